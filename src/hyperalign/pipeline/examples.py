"""Which of the person's own texts a hyperalign generation is shown beside the profile (`examples=K`): the K most
similar to the task, by BM25 over each text and the task it answered (the `bm25s` package).

Why BM25 and not an embedding model: what a few real texts add over the profile is the person's own words, and a
text that shares the task's words (its subject, its kind: an email for an email) shows them where they fit. Lexical
overlap finds that without loading a second model, in milliseconds, and the same texts come back for the same task
every time. Ties (no word in common) keep the texts' own order. Few-shot's lead over the profile comes from the
person's real texts; K = 1 or 2 shows some of them at a fraction of few-shot's prompt."""

from __future__ import annotations

from collections.abc import Sequence

from ..profiles.model import UserExample


def closest_examples(task: str, examples: Sequence[UserExample], k: int) -> list[UserExample]:
    """The `k` texts most similar to `task`, most similar first."""
    if k <= 0 or not examples:
        return []
    if len(examples) <= k:
        return list(examples)
    import bm25s

    corpus = [f"{e.prompt or ''}\n{e.text}" for e in examples]
    tokens = bm25s.tokenize(corpus, stopwords="en", return_ids=False, show_progress=False)
    index = bm25s.BM25()
    index.index(tokens, show_progress=False)
    query = bm25s.tokenize([task], stopwords="en", return_ids=False, show_progress=False)[0]
    scores = index.get_scores(query) if query else [0.0] * len(examples)
    ranked = sorted(range(len(examples)), key=lambda i: (-float(scores[i]), i))
    return [examples[i] for i in ranked[:k]]
