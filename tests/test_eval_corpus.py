"""Corpus loading (author folders, train/test split folders, JSONL) and the seeded per-author split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperalign.errors import InputError
from hyperalign.eval.corpus import NEWS_PROMPT, demonstration_tasks, first_sentence, load_corpus, make_split

CCAT50 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ccat50"


def text_for(author: str, index: int) -> str:
    return f"{author.title()} opens story {index} here. Then {author} adds a second sentence {index}.\nAnd a third."


def write_authors(root: Path, counts: dict[str, int], start: int = 0) -> Path:
    for author, count in counts.items():
        folder = root / author
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(start, start + count):
            (folder / f"{index:03d}.txt").write_text(text_for(author, index), encoding="utf-8")
    return root


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def texts_of(documents, author: str) -> set[str]:
    return {d.text for d in documents if d.author == author}


def test_directory_per_author_layout_gives_disjoint_demos_and_held_out(tmp_path):
    documents = load_corpus(write_authors(tmp_path / "corpus", {"ann": 5, "bo": 6, "cy": 5}))
    assert len(documents) == 16
    assert {d.author for d in documents} == {"ann", "bo", "cy"}
    assert all(d.split is None for d in documents)
    split = make_split(documents, authors=3, shots=2, prompts_per_author=2, seed=1)
    assert [a.author for a in split.authors] == ["ann", "bo", "cy"]
    assert split.skipped == {}
    for block in split.authors:
        demos = {d.text for d in block.demonstrations}
        held = {i.reference for i in block.held_out}
        assert len(block.demonstrations) == 2 and len(demos) == 2
        assert len(block.held_out) == 2 and len(held) == 2
        assert not demos & held
        assert demos | held <= texts_of(documents, block.author)
        assert [i.id for i in block.held_out] == [f"{block.author}#0", f"{block.author}#1"]
        assert all(i.author == block.author for i in block.held_out)


def test_split_directories_assign_train_and_test(tmp_path):
    root = tmp_path / "corpus"
    write_authors(root / "mytrain", {"ann": 4, "bo": 4}, start=0)
    write_authors(root / "mytest", {"ann": 3, "bo": 3}, start=100)
    documents = load_corpus(root)
    assert len(documents) == 14
    assert {d.split for d in documents if d.source.startswith("mytrain")} == {"train"}
    assert {d.split for d in documents if d.source.startswith("mytest")} == {"test"}
    assert {d.author for d in documents} == {"ann", "bo"}  # the split folders are not authors
    split = make_split(documents, authors=2, shots=3, prompts_per_author=2, seed=0)
    for block in split.authors:
        train = {d.text for d in documents if d.author == block.author and d.split == "train"}
        test = {d.text for d in documents if d.author == block.author and d.split == "test"}
        assert {d.text for d in block.demonstrations} <= train
        assert {i.reference for i in block.held_out} <= test
        assert all(i.source.startswith("mytest") for i in block.held_out)


def jsonl_rows() -> list[dict]:
    rows = []
    for author in ("ann", "bo", "cy"):
        for index in range(4):
            rows.append({"author": author, "prompt": f"Train task {index} for {author}", "text": f"{author} train text {index}.",
                         "split": "train"})
        for index in range(2):
            rows.append({"author": author, "prompt": f"Test task {index} for {author}", "text": f"{author} test text {index}.",
                         "split": "test"})
    return rows


def test_jsonl_with_author_prompt_text_split(tmp_path):
    documents = load_corpus(write_jsonl(tmp_path / "c.jsonl", jsonl_rows()))
    assert len(documents) == 18
    assert documents[0].source == "c.jsonl:1"
    split = make_split(documents, authors=3, shots=3, prompts_per_author=2, seed=4)
    prompts = {row["text"]: row["prompt"] for row in jsonl_rows()}
    for block in split.authors:
        assert all(" train text " in d.text for d in block.demonstrations)
        assert all(d.prompt == prompts[d.text] for d in block.demonstrations)  # the row's prompt travels along
        for item in block.held_out:
            assert " test text " in item.reference
            assert item.prompt == prompts[item.reference]  # auto style: the row's prompt, no opening handed over
            assert item.opening == ""


def test_same_seed_same_split_other_seed_different(tmp_path):
    documents = load_corpus(write_authors(tmp_path / "c", {f"author{i}": 8 for i in range(6)}))
    args = dict(authors=3, shots=3, prompts_per_author=2)
    first = make_split(documents, seed=7, **args).model_dump()
    assert make_split(list(reversed(documents)), seed=7, **args).model_dump() == first
    others = [make_split(documents, seed=seed, **args).model_dump() for seed in (8, 9)]
    assert all(other != first for other in others)


def test_news_prompt_hands_over_the_first_sentence(tmp_path):
    documents = load_corpus(write_authors(tmp_path / "c", {"ann": 3, "bo": 3}))
    split = make_split(documents, authors=2, shots=2, prompts_per_author=1, seed=0)
    for block in split.authors:
        item = block.held_out[0]
        assert item.opening == first_sentence(item.reference)
        assert item.opening.startswith(block.author.title()) and item.opening.endswith("here.")
        assert item.prompt == NEWS_PROMPT.format(opening=item.opening)
        assert item.prompt == f"Write an article that starts with the following: {item.opening}"


def test_a_folder_corpus_of_another_genre_names_its_task_for_held_out_texts_and_demonstrations(tmp_path):
    root = write_authors(tmp_path / "c", {"ann": 3, "bo": 3})
    (root / "task-template.txt").write_text("Write an essay {like} this, starting: {opening}\n", encoding="utf-8")
    (root / "bo" / "000.txt").write_text("Bo writes {braces} first. Then more.", encoding="utf-8")
    split = make_split(load_corpus(root), authors=2, shots=2, prompts_per_author=1, seed=0)
    for block in split.authors:
        item = block.held_out[0]
        assert item.prompt == f"Write an essay {{like}} this, starting: {item.opening}"
        for task, demo in zip(demonstration_tasks(block), block.demonstrations, strict=True):
            assert task.text == demo.text and demo.prompt is None
            assert task.prompt == f"Write an essay {{like}} this, starting: {first_sentence(demo.text)}"
    prompts = [b.held_out[0].prompt for b in split.authors] + [
        t.prompt for b in split.authors for t in demonstration_tasks(b)]
    assert sum("Bo writes {braces} first." in (p or "") for p in prompts) == 1  # an opening's braces are kept as is


@pytest.mark.parametrize("template", ["Write an essay.", "{opening} then {opening}", ""])
def test_a_task_template_without_exactly_one_opening_is_refused_by_name(tmp_path, template):
    root = write_authors(tmp_path / "c", {"ann": 3, "bo": 3})
    (root / "task-template.txt").write_text(template, encoding="utf-8")
    with pytest.raises(InputError, match=r"task-template\.txt: (a task template needs \{opening\} exactly once|the file is empty)"):
        load_corpus(root)


def test_a_split_saved_before_task_templates_reads_as_news(tmp_path):
    split = make_split(load_corpus(write_authors(tmp_path / "c", {"ann": 3, "bo": 3})), authors=2, shots=2,
                       prompts_per_author=1, seed=0)
    saved = split.model_dump(mode="json")
    for block in saved["authors"]:
        del block["task_template"]
    old = type(split).model_validate(saved)
    assert [t.prompt for t in demonstration_tasks(old.authors[0])] == [
        NEWS_PROMPT.format(opening=first_sentence(d.text)) for d in old.authors[0].demonstrations]


def test_prompt_styles_news_and_row_on_jsonl(tmp_path):
    documents = load_corpus(write_jsonl(tmp_path / "c.jsonl", jsonl_rows()))
    news = make_split(documents, authors=2, shots=2, prompts_per_author=1, seed=0, prompt_style="news")
    item = news.authors[0].held_out[0]
    assert item.opening == item.reference and item.prompt == NEWS_PROMPT.format(opening=item.reference)
    unprompted = [{k: v for k, v in row.items() if k != "prompt"} for row in jsonl_rows()]
    bare = load_corpus(write_jsonl(tmp_path / "bare.jsonl", unprompted))
    with pytest.raises(InputError, match="prompt style 'row' needs a 'prompt'"):
        make_split(bare, authors=2, shots=2, prompts_per_author=1, seed=0, prompt_style="row")


def test_authors_with_too_few_texts_are_skipped_with_a_reason(tmp_path):
    documents = load_corpus(write_authors(tmp_path / "c", {"ann": 4, "bo": 4, "tiny": 2}))
    split = make_split(documents, authors=3, shots=2, prompts_per_author=2, seed=0)
    assert [a.author for a in split.authors] == ["ann", "bo"]
    assert list(split.skipped) == ["tiny"]
    assert "2 texts" in split.skipped["tiny"] and "2 shots + 2 held out" in split.skipped["tiny"]


def test_split_layout_skips_an_author_without_enough_test_texts(tmp_path):
    root = tmp_path / "c"
    write_authors(root / "train", {"ann": 3, "bo": 3, "cy": 3})
    write_authors(root / "test", {"ann": 2, "bo": 2, "cy": 1}, start=50)
    split = make_split(load_corpus(root), authors=3, shots=3, prompts_per_author=2, seed=0)
    assert [a.author for a in split.authors] == ["ann", "bo"]
    assert split.skipped["cy"] == "3 training / 1 test texts; needs 3 / 2"


def test_fewer_than_two_eligible_authors_is_an_input_error(tmp_path):
    documents = load_corpus(write_authors(tmp_path / "c", {"ann": 5, "bo": 1, "cy": 2}))
    with pytest.raises(InputError, match=r"only 1 author\(s\) have enough texts for 3 shots \+ 1 held out \(of 3"):
        make_split(documents, authors=3, shots=3, prompts_per_author=1, seed=0)
    with pytest.raises(InputError, match="need shots >= 1"):
        make_split(documents, authors=3, shots=0, prompts_per_author=1, seed=0)


def test_corpus_problems_are_input_errors_naming_the_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no texts"):
        load_corpus(tmp_path / "empty")
    with pytest.raises(InputError, match="no such corpus"):
        load_corpus(tmp_path / "missing")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"author": "ann", "text": "fine"}\n{"author": "bo", "text": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl, line 2: not valid JSON"):
        load_corpus(bad)
    write_jsonl(bad, [{"author": "ann", "text": "fine"}, {"author": "bo"}])
    with pytest.raises(InputError, match=r"line 2: field 'text'"):
        load_corpus(bad)
    write_jsonl(bad, [{"author": "ann", "text": "fine", "split": "dev"}])
    with pytest.raises(InputError, match=r"line 1: field 'split'"):
        load_corpus(bad)
    write_jsonl(bad, [{"author": "ann", "text": "   "}])
    with pytest.raises(InputError, match="line 1: the text is empty"):
        load_corpus(bad)


def test_classifier_texts_shots_versus_all(tmp_path):
    documents = load_corpus(write_authors(tmp_path / "c", {"ann": 7, "bo": 7}))
    args = dict(authors=2, shots=2, prompts_per_author=2, seed=3)
    shots = make_split(documents, classifier_texts="shots", **args)
    everything = make_split(documents, classifier_texts="all", **args)
    for small, big in zip(shots.authors, everything.authors, strict=True):
        demos = [d.text for d in small.demonstrations]
        held = {i.reference for i in big.held_out}
        assert small.classifier_texts == demos
        assert set(big.classifier_texts) == texts_of(documents, big.author) - held  # never a held-out text
        assert len(big.classifier_texts) == 5 and set(demos) <= set(big.classifier_texts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. Second one.", "Hello there."),
        ("Line one\r\ncontinues here! And more.", "Line one continues here!"),
        ('He said "stop." Then left.', 'He said "stop."'),
        ("Shares rose 3.5 percent on Monday. Analysts cheered.", "Shares rose 3.5 percent on Monday."),
        ("Is it? Yes.", "Is it?"),
        ("no punctuation at all", "no punctuation at all"),
        ("x" * 300, "x" * 200),
    ],
)
def test_first_sentence(text, expected):
    assert first_sentence(text) == expected


@pytest.mark.skipif(not CCAT50.is_dir(), reason="../shared/data/ccat50 is not present")
def test_ccat50_loads_with_its_train_test_split():
    documents = load_corpus(CCAT50)
    assert len({d.author for d in documents}) == 50
    assert {d.split for d in documents} == {"train", "test"}
    assert all(d.split == ("train" if d.source.startswith("C50train") else "test") for d in documents)
    crlf = next(d for d in documents if "\r\n" in d.text)  # the files are CRLF; read verbatim
    assert "\r" not in first_sentence(crlf.text)
    split = make_split(documents, authors=5, shots=7, prompts_per_author=2, seed=0)
    assert len(split.authors) == 5
    for block in split.authors:
        train = {d.text for d in documents if d.author == block.author and d.split == "train"}
        test = {d.text for d in documents if d.author == block.author and d.split == "test"}
        assert len(block.demonstrations) == 7 and {d.text for d in block.demonstrations} <= train
        assert len(block.held_out) == 2 and {i.reference for i in block.held_out} <= test
        assert all(i.source.startswith("C50test/") for i in block.held_out)
        assert all(i.prompt.startswith("Write an article that starts with the following: ") for i in block.held_out)
