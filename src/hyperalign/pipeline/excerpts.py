"""The person's own sentences that sound most like them and least like the default voice (`excerpts=N`).

Few-shot's lead over the profile comes from the person's real words; `examples=K` shows whole texts, and most of a
text is its topic. An excerpt is a sentence of the person's texts chosen for its habits alone: each habit token —
a function word, a discourse marker, a contraction (distinctive.py's closed classes) or a punctuation mark — is
weighted by how much more the person uses it than the default voice (the log-odds of distinctive.py, general
language as the prior for words), and a sentence scores the sum of its tokens' weights over the square root of its
length, so a long sentence does not win by length. The N best, from as many of the person's texts as possible,
are shown in the order they were written: a few hundred tokens of the person's voice instead of whole texts.

Where the profile has no contrast (the paper method), the words' weights come from the general language's
frequencies alone and punctuation is weighed against the person's own mean: a plainer, still person-specific pick."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from ..text import split_sentences
from .distinctive import habit_counts, is_habit, log_odds
from .facts import background_frequency, content_words

PUNCTUATION = "!?;:,—–-…()\"'“”’"
MIN_WORDS, MAX_WORDS = 6, 40  # a sentence long enough to carry habits, short enough to stay one voice sample
PUNCTUATION_PRIOR = 0.01  # a mark's share of tokens in general prose (its prior, as a word's frequency is)
_TOKEN = re.compile(r"[\w’']+|[" + re.escape(PUNCTUATION) + "]")


def _tokens(sentence: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(sentence)]


def habit_weights(texts: Sequence[str], contrast_texts: Sequence[str], language: str = "en") -> dict[str, float]:
    """token -> how much more the person uses it than the contrast (log-odds z); habit words and punctuation only."""
    per_text, _ = habit_counts(texts)
    person: Counter[str] = sum(per_text, Counter())
    contrast: Counter[str] = Counter()
    for raw in contrast_texts:
        contrast.update(content_words(raw))
    marks = Counter(ch for raw in texts for ch in raw if ch in PUNCTUATION)
    other_marks = Counter(ch for raw in contrast_texts for ch in raw if ch in PUNCTUATION)
    total, other_total = sum(person.values()), sum(contrast.values())
    weights: dict[str, float] = {}
    if not total:
        return weights
    for word in person:
        if len(word) >= 2 and is_habit(word, language):
            prior = max(background_frequency(word, language), 1e-9)
            other, other_all = (contrast[word], other_total) if other_total else (prior * total, float(total))
            weights[word] = log_odds(person[word], total, other, other_all, prior)
    mark_total = sum(marks.values())
    for mark in marks:
        if other_total:
            weights[mark] = log_odds(marks[mark], total, other_marks[mark], other_total, PUNCTUATION_PRIOR)
        else:  # no contrast: against the person's own mean over the marks they use
            weights[mark] = log_odds(marks[mark], total, mark_total / len(marks), total, PUNCTUATION_PRIOR)
    return weights


def characteristic_sentences(texts: Sequence[str], contrast_texts: Sequence[str], n: int,
                             language: str = "en") -> list[str]:
    """The `n` sentences of the person's texts that score highest on their habits (module docstring), at most
    ceil(n / texts) from any one text, in the order written; none repeated."""
    return [sentence for _, sentence in characteristic_samples(texts, contrast_texts, n, language)]


def characteristic_samples(texts: Sequence[str], contrast_texts: Sequence[str], n: int,
                           language: str = "en") -> list[tuple[int, str]]:
    """`characteristic_sentences`, each with the index of the text it was taken from."""
    if n <= 0:
        return []
    weights = habit_weights(texts, contrast_texts, language)
    candidates: list[tuple[float, int, int, str]] = []
    for t, raw in enumerate(texts):
        for position, sentence in enumerate(split_sentences(raw)):
            words = len(sentence.split())
            if MIN_WORDS <= words <= MAX_WORDS:
                tokens = _tokens(sentence)
                score = sum(weights.get(token, 0.0) for token in tokens) / math.sqrt(len(tokens))
                candidates.append((score, t, position, sentence))
    per_text = math.ceil(n / max(1, len(texts)))
    taken: Counter[int] = Counter()
    chosen: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for _, t, position, sentence in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if len(chosen) == n:
            break
        key = " ".join(_tokens(sentence))
        if key in seen or taken[t] >= per_text:
            continue
        seen.add(key)
        taken[t] += 1
        chosen.append((t, position, sentence))
    return [(t, sentence) for t, _, sentence in sorted(chosen)]
