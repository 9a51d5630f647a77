"""Generic hypotheses: statements that many profiles of a population (a batch, a tenant) share.

"The person is humorous" in 40% of a tenant's profiles says nothing about any one of them. Each inferred
hypothesis gets `shared_by` — the share of the population's profiles holding the same statement — and is marked
`generic` at or above a threshold; generators rank generic hypotheses last and the review page shows the share.
Statements are compared by a canonical key (profiles/statements.py: stemmed words, without the words every
statement about a writer has), so that "This person is humorous." and "The person is more humorous than typical
answers" are one statement. A small model words one trait many ways ("is skeptical", "is skeptical and critical",
"has skepticism"), so a statement also counts as shared when *every one of its words* is in the statements of
`threshold` of the profiles: its share is then the rarest word's — an upper bound on how many profiles say all of it,
and the reason a statement with one word of its own ("opens with 'Right then'") is never generic by words. Only keys
are counted: a statistic, no other person's text, and linear in the population's size. A batch counts its own
profiles here; a profile store (the service's tenants) keeps the counts as it saves (statements.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from ..profiles.model import Hypothesis, Profile
from ..profiles.statements import canonical, key_of, statement_keys, statement_words, word_key

__all__ = ["GENERIC_SHARE", "MIN_POPULATION", "canonical", "count_keys", "generic_share", "mark_generic", "marked"]

GENERIC_SHARE = 0.2
MIN_POPULATION = 5  # below this, a share says little


def count_keys(profiles: Iterable[Profile]) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    population = 0
    for profile in profiles:
        counts.update(statement_keys(profile))
        population += 1
    return counts, population


def marked(hypotheses: Sequence[Hypothesis], counts: Counter[str], population: int, *,
           threshold: float = GENERIC_SHARE, min_population: int = MIN_POPULATION) -> list[Hypothesis]:
    """The hypotheses with `shared_by` and `generic` set from a population's key counts (which include this one)."""
    if population <= 0:
        return list(hypotheses)
    result = []
    for h in hypotheses:
        # Profiles holding this statement, or (at most) holding each of its words in some wording.
        words = statement_words(h.statement)
        by_words = min((counts[word_key(w)] for w in words), default=0)
        holders = max(counts[key_of(words)], by_words)
        share = round(min(1.0, holders / population), 3)
        # Shared means held by another profile too: alone in a population of 5, a statement has 20% by itself.
        generic = population >= min_population and holders >= 2 and share >= threshold and h.origin != "person"
        result.append(h.model_copy(update={"shared_by": share, "generic": generic}))
    return result


def mark_generic(profiles: Sequence[Profile], *, threshold: float = GENERIC_SHARE,
                 min_population: int = MIN_POPULATION) -> list[Profile]:
    """Every profile of the population with its hypotheses' shares and generic marks."""
    counts, population = count_keys(profiles)
    return [p.model_copy(update={"hypotheses": marked(p.hypotheses, counts, population, threshold=threshold,
                                                      min_population=min_population)})
            for p in profiles]


def generic_share(profiles: Sequence[Profile]) -> float:
    """The share of the population's inferred hypotheses whose statement is in two or more profiles (the issue's
    "word-for-word in two or more profiles", on canonical keys)."""
    counts, _ = count_keys(profiles)
    statements = [canonical(h.statement) for p in profiles for h in p.hypotheses
                  if h.origin == "inferred"]
    return sum(counts[k] >= 2 for k in statements) / len(statements) if statements else 0.0
