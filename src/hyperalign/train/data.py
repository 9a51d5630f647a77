"""What DITTO trains on: the demonstrations the authorship evaluation's split gives each author, with their prompts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..eval.corpus import (
    AuthorSplit,
    PromptStyle,
    Split,
    demonstration_tasks,
    load_corpus,
    make_split,
)


@dataclass(frozen=True)
class Demonstration:
    prompt: str
    text: str


def load_split(
    corpus: Path, *, authors: int, shots: int, prompts_per_author: int, seed: int, prompt_style: PromptStyle = "auto"
) -> Split:
    """The same call `hyperalign eval authorship` makes, so the author set, demonstrations and prompts match."""
    return make_split(
        load_corpus(corpus), authors=authors, shots=shots, prompts_per_author=prompts_per_author, seed=seed,
        prompt_style=prompt_style,
    )


def select_authors(split: Split, names: Sequence[str] = (), *, all_authors: bool = False) -> list[AuthorSplit]:
    if all_authors:
        return list(split.authors)
    if not names:
        raise InputError("name at least one author, or ask for all of the split's authors")
    by_name = {a.author: a for a in split.authors}
    missing = [n for n in names if n not in by_name]
    if missing:
        skipped = f"; left out of the split for too few texts: {', '.join(split.skipped)}" if split.skipped else ""
        raise InputError(
            f"author {missing[0]!r} is not in this split (make it with the corpus, authors, shots, prompts per "
            f"author and seed of the evaluation). The split's authors: {', '.join(by_name)}{skipped}"
        )
    return [by_name[n] for n in dict.fromkeys(names)]


def demonstrations_of(author: AuthorSplit, prompt_style: PromptStyle = "auto") -> list[Demonstration]:
    """The author's demonstrations, each with its task: its row prompt or the corpus's task template."""
    return [Demonstration(prompt=e.prompt or "", text=e.text.strip()) for e in demonstration_tasks(author, prompt_style)]
