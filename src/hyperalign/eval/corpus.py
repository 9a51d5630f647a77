"""Corpora for authorship evaluation, and the seeded per-author split into demonstrations and held-out tasks.

Two shapes: a directory with one sub-directory of plain-text files per author (optionally one level deeper under
split directories whose names contain "train" / "test", as CCAT50's C50train and C50test), or JSONL lines
{"author", "prompt"?, "text", "split"?}.

A text without a prompt is given the corpus's task template with its own first sentence as the opening. The template
is news-like by default (CCAT50); a folder corpus of another genre says its own in a `task-template.txt` at its root,
e.g. "Write an essay that starts with the following: {opening}", so methods are not asked for the wrong genre."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from ..errors import InputError, first_error
from ..io import iter_jsonl, read_text_file
from ..profiles.model import UserExample

PromptStyle = Literal["auto", "news", "row"]
NEWS_PROMPT = "Write an article that starts with the following: {opening}"
TASK_TEMPLATE_FILE = "task-template.txt"
OPENING = "{opening}"
_SENTENCE = re.compile(r"^(.+?[.!?][\"')\]]*)(?=\s|$)", re.DOTALL)


def _one_opening(template: str) -> str:
    if template.count(OPENING) != 1:
        raise ValueError(f"a task template needs {OPENING} exactly once, where the text's first sentence goes")
    return template


TaskTemplate = Annotated[str, AfterValidator(_one_opening)]


class Document(BaseModel):
    author: str
    text: str
    prompt: str | None = None
    split: Literal["train", "test"] | None = None
    task_template: TaskTemplate = NEWS_PROMPT
    source: str = ""


class HeldOutItem(BaseModel):
    id: str
    author: str
    prompt: str
    opening: str = Field(description="text of the reference that the prompt hands to every method ('' if none)")
    reference: str
    source: str = ""


class AuthorSplit(BaseModel):
    author: str
    demonstrations: list[UserExample]
    held_out: list[HeldOutItem]
    task_template: str = Field(NEWS_PROMPT, description="the corpus's task for a text without a prompt")
    classifier_texts: list[str] = Field(description="the author's texts the attribution classifier trains on")
    # Where each demonstration and classifier text is in the corpus (Document.source), in the same order: a run's
    # split.json names its texts by these (eval/split_file.py). Empty for a split read from an older run folder.
    demonstration_sources: list[str] = Field(default_factory=list)
    classifier_sources: list[str] = Field(default_factory=list)


class Split(BaseModel):
    authors: list[AuthorSplit]
    skipped: dict[str, str] = Field(default_factory=dict, description="author -> why it was left out")

    def item(self, item_id: str) -> HeldOutItem:
        return next(i for a in self.authors for i in a.held_out if i.id == item_id)


def first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    match = _SENTENCE.match(flat)
    return (match.group(1) if match else flat[:200]).strip()


def load_corpus(path: Path) -> list[Document]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such corpus (a directory of author folders, or a JSONL file)")
    documents = _load_jsonl(path) if path.is_file() else _load_directory(path)
    if not documents:
        raise InputError(f"{path}: the corpus holds no texts")
    return documents


def _load_jsonl(path: Path) -> list[Document]:
    documents = []
    for number, row in iter_jsonl(path):
        try:
            document = Document.model_validate({**row, "source": f"{path.name}:{number}"})
        except ValidationError as exc:
            field, message = first_error(exc, "line")
            raise InputError(f"{path}, line {number}: field '{field}': {message}") from None
        if not document.text.strip():
            raise InputError(f"{path}, line {number}: the text is empty")
        documents.append(document)
    return documents


def _split_of(name: str) -> Literal["train", "test"] | None:
    lowered = name.lower()
    return "train" if "train" in lowered else "test" if "test" in lowered else None


def _load_directory(root: Path) -> list[Document]:
    subdirectories = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [d for d in subdirectories if _split_of(d.name)]
    if split_dirs and len(split_dirs) == len(subdirectories):
        layout = [(d, _split_of(d.name)) for d in split_dirs]
    else:
        layout = [(root, None)]
    template = _task_template(root / TASK_TEMPLATE_FILE)
    documents = []
    for base, split in layout:
        for author_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for file in sorted(f for f in author_dir.iterdir() if f.is_file() and not f.name.startswith(".")):
                documents.append(Document(author=author_dir.name, text=read_text_file(file), split=split,
                                          task_template=template, source=str(file.relative_to(root))))
    return documents


def _task_template(path: Path) -> str:
    if not path.is_file():
        return NEWS_PROMPT
    try:
        return _one_opening(read_text_file(path).strip())
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


def task_prompt(text: str, prompt: str | None, style: PromptStyle, source: str,
                template: str = NEWS_PROMPT) -> tuple[str, str]:
    """(prompt, opening) for a text: its own prompt, or the task template handing over the text's first sentence."""
    if style == "row" or (style == "auto" and prompt):
        if not prompt:
            raise InputError(f"{source}: prompt style 'row' needs a 'prompt' on every text of the split")
        return prompt, ""
    opening = first_sentence(text)
    return template.replace(OPENING, opening), opening  # not str.format: an opening may hold braces


def demonstration_tasks(author: AuthorSplit, style: PromptStyle = "auto") -> list[UserExample]:
    """The author's demonstrations, each with the task it answers by the same rule as the held-out items, for the
    methods that practise or train on the demonstrations' tasks (TICL's trials, DITTO): they must practise on the
    kind of task they are tested on, not on a generic "write something"."""
    source = f"author {author.author!r}"
    return [UserExample(prompt=task_prompt(e.text, e.prompt, style, source, author.task_template)[0], text=e.text)
            for e in author.demonstrations]


def make_split(
    documents: list[Document],
    *,
    authors: int,
    shots: int,
    prompts_per_author: int,
    seed: int,
    prompt_style: PromptStyle = "auto",
    classifier_texts: Literal["all", "shots"] = "all",
) -> Split:
    """Seeded and deterministic: the same corpus and arguments give the same split on any machine."""
    if shots < 1 or prompts_per_author < 1 or authors < 2:
        raise InputError("need shots >= 1, prompts per author >= 1 and authors >= 2 (attribution is closed-set)")
    by_author: dict[str, list[Document]] = defaultdict(list)
    for document in documents:
        by_author[document.author].append(document)
    rng = random.Random(seed)
    eligible, skipped = [], {}
    pools: dict[str, tuple[list[Document], list[Document]]] = {}
    for author in sorted(by_author):
        docs = sorted(by_author[author], key=lambda d: (d.source, d.text))
        train = [d for d in docs if d.split != "test"]
        test = [d for d in docs if d.split != "train"]
        has_splits = any(d.split for d in docs)
        if has_splits and (len(train) < shots or len(test) < prompts_per_author):
            skipped[author] = f"{len(train)} training / {len(test)} test texts; needs {shots} / {prompts_per_author}"
        elif not has_splits and len(docs) < shots + prompts_per_author:
            skipped[author] = f"{len(docs)} texts; needs {shots} shots + {prompts_per_author} held out"
        else:
            eligible.append(author)
            pools[author] = (train, test) if has_splits else (docs, docs)
    if len(eligible) < 2:
        raise InputError(
            f"only {len(eligible)} author(s) have enough texts for {shots} shots + {prompts_per_author} held out "
            f"(of {len(by_author)} in the corpus); attribution needs at least 2"
        )
    chosen = sorted(rng.sample(eligible, min(authors, len(eligible))))
    result = []
    for author in chosen:
        train_pool, test_pool = pools[author]
        author_rng = random.Random(f"{seed}:{author}")
        held = author_rng.sample(test_pool, prompts_per_author)
        remaining = [d for d in train_pool if d not in held]
        demos = author_rng.sample(remaining, shots)
        items = []
        for index, document in enumerate(held):
            prompt, opening = task_prompt(document.text, document.prompt, prompt_style, document.source,
                                          document.task_template)
            items.append(
                HeldOutItem(
                    id=f"{author}#{index}", author=author, prompt=prompt, opening=opening,
                    reference=document.text, source=document.source,
                )
            )
        classifier_pool = demos if classifier_texts == "shots" else remaining
        result.append(
            AuthorSplit(
                author=author,
                demonstrations=[UserExample(prompt=d.prompt, text=d.text) for d in demos],
                demonstration_sources=[d.source for d in demos],
                held_out=items,
                task_template=demos[0].task_template,
                classifier_texts=[d.text for d in classifier_pool],
                classifier_sources=[d.source for d in classifier_pool],
            )
        )
    return Split(authors=result, skipped={a: skipped[a] for a in sorted(skipped)})
