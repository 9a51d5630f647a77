"""A run's split.json names its corpus texts (place in the corpus and SHA-256) instead of copying them; reading it
rebuilds the split from the corpus, refuses a corpus that is missing or changed, and still reads the older files that
hold the texts inline (the committed run archives among them)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyperalign.cli import app
from hyperalign.errors import InputError
from hyperalign.eval.corpus import Split, load_corpus, make_split
from hyperalign.eval.runs import RunFolder
from hyperalign.eval.split_file import SPLIT_FILE, StoredSplit, read_split, write_split
from test_eval_corpus import jsonl_rows, write_authors, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def archived_split(archive: Path) -> bytes | None:
    """The run folder's split.json in a committed run archive (a deliberative run has none)."""
    with tarfile.open(archive, "r:gz") as tar:
        member = next((m for m in tar if m.name.count("/") == 1 and m.name.endswith("/" + SPLIT_FILE)), None)
        source = tar.extractfile(member) if member else None
        return source.read() if source else None


def _inline(archive: Path) -> bool:
    return "format" not in json.loads(archived_split(archive) or b"{}")


WITH_SPLIT = [a for a in sorted((ROOT / "benchmarks" / "runs").glob("*.tar.gz")) if archived_split(a)]
# Archives written before splits named their texts hold the texts inline and read without any corpus; newer ones
# name their texts (the corpus is rebuilt from public sources by benchmarks/corpora.py, never committed).
ARCHIVES = [a for a in WITH_SPLIT if _inline(a)]
NAMED = [a for a in WITH_SPLIT if not _inline(a)]


def split_of(corpus: Path) -> Split:
    return make_split(load_corpus(corpus), authors=2, shots=2, prompts_per_author=1, seed=0)


@pytest.mark.parametrize("kind", ["folders", "jsonl"])
def test_the_split_names_its_texts_and_rebuilds_as_it_was_made(tmp_path, kind):
    corpus = (write_authors(tmp_path / "c", {"ann": 4, "bo": 4}) if kind == "folders"
              else write_jsonl(tmp_path / "c.jsonl", jsonl_rows()))
    split, folder = split_of(corpus), RunFolder(tmp_path / "run")
    write_split(folder, split)
    stored = folder.file(SPLIT_FILE).read_text(encoding="utf-8")
    assert json.loads(stored)["format"] == 2
    for document in load_corpus(corpus):  # not one text is copied (a held-out prompt hands over its opening only)
        assert document.text not in stored and document.text.splitlines()[-1] not in stored
    sources = [d["source"] for a in json.loads(stored)["authors"] for d in a["demonstrations"]]
    assert all(s.startswith(("ann/", "bo/")) for s in sources) if kind == "folders" else all(
        s.startswith("c.jsonl:") for s in sources)
    assert read_split(folder, corpus) == split


def test_a_changed_missing_or_unreadable_corpus_text_is_refused_by_name(tmp_path):
    corpus = write_authors(tmp_path / "c", {"ann": 4, "bo": 4})
    split, folder = split_of(corpus), RunFolder(tmp_path / "run")
    write_split(folder, split)
    source = split.authors[0].held_out[0].source
    (corpus / source).write_text("Someone else's text now.", encoding="utf-8")
    with pytest.raises(InputError, match=rf"split\.json: the text {source} changed in the corpus .* another folder"):
        read_split(folder, corpus)
    (corpus / source).unlink()
    with pytest.raises(InputError, match=rf"the text {source} is not in the corpus"):
        read_split(folder, corpus)
    with pytest.raises(InputError, match=r"split\.json reads its texts from the corpus .*elsewhere.*no such corpus"):
        read_split(folder, tmp_path / "elsewhere")


def test_a_rerun_against_a_changed_corpus_stops_with_one_line_and_exit_2(tmp_path):
    corpus, out = write_authors(tmp_path / "c", {"ann": 3, "bo": 3, "cy": 3}), tmp_path / "run"
    args = ["--backend", "fake", "--no-cache", "eval", "authorship", "--corpus", str(corpus), "--authors", "2",
            "--prompts-per-author", "1", "--shots", "2", "--methods", "zero-shot,few-shot", "--judge", "none",
            "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    source = json.loads((out / SPLIT_FILE).read_text(encoding="utf-8"))["authors"][0]["classifier_texts"][0]["source"]
    (corpus / source).write_text("Edited since.", encoding="utf-8")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert " ".join(result.output.split()).count("Error:") == 1 and source in result.output


def test_a_split_with_its_texts_inline_reads_without_the_corpus(tmp_path):
    corpus = write_authors(tmp_path / "c", {"ann": 4, "bo": 4})
    split, folder = split_of(corpus), RunFolder(tmp_path / "run")
    old = split.model_dump(mode="json", exclude={"authors": {"__all__": {"demonstration_sources", "classifier_sources"}}})
    folder.write_json(SPLIT_FILE, old)
    loaded = read_split(folder, tmp_path / "no-such-corpus")
    assert loaded.authors[0].demonstrations == split.authors[0].demonstrations
    assert loaded.authors[0].held_out == split.authors[0].held_out


@pytest.mark.parametrize("archive", ARCHIVES, ids=[a.name for a in ARCHIVES])
def test_the_committed_run_archives_split_still_loads(tmp_path, archive):
    (tmp_path / SPLIT_FILE).write_bytes(archived_split(archive) or b"")
    split = read_split(RunFolder(tmp_path))
    assert len(split.authors) >= 2 and all(a.held_out and a.demonstrations for a in split.authors)


@pytest.mark.parametrize("archive", NAMED, ids=[a.name for a in NAMED])
def test_the_committed_run_archives_naming_their_texts_still_parse(archive):
    stored = StoredSplit.model_validate_json(archived_split(archive) or b"")
    assert len(stored.authors) >= 2
    assert all(a.held_out and a.demonstrations and all(len(r.sha256) == 64 for r in a.held_out) for a in stored.authors)
