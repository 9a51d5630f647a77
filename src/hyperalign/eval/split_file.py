"""A run's split.json: which corpus texts are each author's demonstrations, held-out tasks and classifier texts —
named by their place in the corpus and a SHA-256 of their content, not copied (a run folder stays small, and it
never carries a corpus's texts). Reading rebuilds the split from the corpus, and refuses a corpus that is missing or
whose text changed since the split was made: the run's finished work was made from the texts as they were.

Run folders written before this format hold the texts inline; they are read as they are."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import InputError
from ..profiles.model import UserExample
from .corpus import AuthorSplit, HeldOutItem, Split, load_corpus
from .runs import RunFolder

SPLIT_FILE = "split.json"
SPLIT_FORMAT = 2


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TextRef(BaseModel):
    source: str = Field(description="the text's path under the corpus root (a JSONL corpus: 'FILE:LINE')")
    sha256: str


class StoredDemonstration(TextRef):
    prompt: str | None = None


class StoredItem(TextRef):
    id: str
    author: str
    prompt: str
    opening: str


class StoredAuthor(BaseModel):
    author: str
    task_template: str
    demonstrations: list[StoredDemonstration]
    held_out: list[StoredItem]
    classifier_texts: list[TextRef]


class StoredSplit(BaseModel):
    format: Literal[2]
    authors: list[StoredAuthor]
    skipped: dict[str, str] = Field(default_factory=dict)


def stored_split(split: Split) -> StoredSplit:
    """The split as split.json holds it. Needs a split made from a loaded corpus (which names every text's source)."""
    def ref(source: str, text: str) -> dict[str, str]:
        return {"source": source, "sha256": text_hash(text)}

    authors = [
        StoredAuthor(
            author=a.author, task_template=a.task_template,
            demonstrations=[StoredDemonstration(prompt=d.prompt, **ref(source, d.text))
                            for d, source in zip(a.demonstrations, a.demonstration_sources, strict=True)],
            held_out=[StoredItem(id=i.id, author=i.author, prompt=i.prompt, opening=i.opening, **ref(i.source, i.reference))
                      for i in a.held_out],
            classifier_texts=[TextRef(**ref(source, text))
                              for source, text in zip(a.classifier_sources, a.classifier_texts, strict=True)],
        )
        for a in split.authors
    ]
    return StoredSplit(format=SPLIT_FORMAT, authors=authors, skipped=split.skipped)


def write_split(folder: RunFolder, split: Split) -> None:
    folder.write_json(SPLIT_FILE, stored_split(split).model_dump(mode="json"))


def read_split(folder: RunFolder, corpus: Path | str | None = None) -> Split:
    """The run's split, its texts read from `corpus` (default: the corpus in the run's config.json)."""
    raw = folder.read_json(SPLIT_FILE)
    if isinstance(raw, dict) and "format" not in raw:  # written before splits named their texts: texts inline
        return folder.read_model(SPLIT_FILE, Split)
    stored = folder.read_model(SPLIT_FILE, StoredSplit)
    if corpus is None:
        config = folder.read_json("config.json")
        if not isinstance(config, dict) or not isinstance(config.get("corpus"), str):
            raise InputError(f"{folder.file('config.json')}: names no corpus, which {SPLIT_FILE} reads its texts from")
        corpus = config["corpus"]
    return rebuilt(stored, Path(corpus), folder.file(SPLIT_FILE))


def rebuilt(stored: StoredSplit, corpus: Path, path: Path) -> Split:
    """The split with its texts read from the corpus, each checked against its hash."""
    try:
        documents = {d.source: d.text for d in load_corpus(corpus)}
    except InputError as exc:
        raise InputError(f"{path} reads its texts from the corpus {corpus}, which cannot be read: {exc}") from None

    def text(ref: TextRef) -> str:
        found = documents.get(ref.source)
        if found is None or text_hash(found) != ref.sha256:
            what = "is not in" if found is None else "changed in"
            raise InputError(f"{path}: the text {ref.source} {what} the corpus {corpus} since the split was made; "
                             "restore the corpus, or start a new run in another folder")
        return found

    return Split(
        authors=[
            AuthorSplit(
                author=a.author, task_template=a.task_template,
                demonstrations=[UserExample(prompt=d.prompt, text=text(d)) for d in a.demonstrations],
                demonstration_sources=[d.source for d in a.demonstrations],
                held_out=[HeldOutItem(id=i.id, author=i.author, prompt=i.prompt, opening=i.opening, reference=text(i),
                                      source=i.source) for i in a.held_out],
                classifier_texts=[text(t) for t in a.classifier_texts],
                classifier_sources=[t.source for t in a.classifier_texts],
            )
            for a in stored.authors
        ],
        skipped=stored.skipped,
    )
