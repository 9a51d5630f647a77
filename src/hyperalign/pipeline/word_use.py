"""Word use against the default voice: the person's margin that best-of-N ranks candidates by.

Measured at inference (contrastive method): the rate per 1,000 words of the `TOP` habit words (closed classes and
contractions, distinctive.HABIT_WORDS — not topics) most frequent in the person's texts and the default voice's
together, for each side, with the spread of each rate over all those texts. A candidate's margin is Burrows' Delta
turned into a two-way comparison (Burrows 2002; the authorship evaluation's Delta, eval/authorship/delta.py, is the
same family): per word, (|rate − voice| − |rate − person|) / spread — positive where the candidate sits closer to
the person than to what the model writes anyway — each term capped at ±Z_CAP, averaged over the words. A word the
person and the default voice use alike adds about 0 whatever the candidate does, so only the person's distinctive
habits move the margin; a text that only moves towards the genre does not.

Why not the measured facts' margin alone (adherence.facts_margin): across the committed AAAC and beer-forum runs,
this margin ranks a prompt's outputs in the order of the evaluation's Delta margin, and the five or six facts' margin
does not (benchmarks/results/word-use-rerank.md, by benchmarks/word_use_rerank.py). As a best-of-N reranker of one
method's samples it moves the Delta margin far less than that ordering promises (benchmarks/results/*-wordmargin-*).

What it reads: the person's own texts and the default voice's (model output) at inference; the candidate at
generation. Never another person's text, the evaluation's classifier or its judge."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from statistics import mean, pstdev

from ..profiles.types import WordUse
from .distinctive import HABIT_WORDS

TOP = 100
# Beyond this many spreads a deviation is plainly off, and one term must not outweigh the rest: the cap of every
# margin and distance term (adherence's and the facts' margins, revision's order, profile identification).
Z_CAP = 4.0
MIN_WORDS = 20  # a shorter text's rates are noise: no margin
SPREAD_FLOOR = 0.5  # per 1,000 words: a word every text uses at the same rate must not divide by ~0

_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def _rates(words: list[str], vocabulary: Sequence[str]) -> list[float]:
    counts = Counter(words)
    total = max(1, len(words))
    return [1000 * counts[w] / total for w in vocabulary]


def measure_word_use(person: Sequence[str], voice: Sequence[str], top: int = TOP) -> WordUse | None:
    """The person's word use against the default voice; None without two texts of the person and one of the
    voice with words in them (a spread needs more than one text)."""
    person_words = [w for w in map(_words, person) if w]
    voice_words = [w for w in map(_words, voice) if w]
    if len(person_words) < 2 or not voice_words:
        return None
    counts = Counter(w for words in [*person_words, *voice_words] for w in words if w in HABIT_WORDS)
    vocabulary = sorted(counts, key=lambda w: (-counts[w], w))[:top]
    if not vocabulary:
        return None
    person_rates = [_rates(words, vocabulary) for words in person_words]
    voice_rates = [_rates(words, vocabulary) for words in voice_words]
    columns = list(zip(*person_rates, *voice_rates, strict=True))
    return WordUse(
        words=vocabulary,
        person=[round(mean(r[i] for r in person_rates), 3) for i in range(len(vocabulary))],
        voice=[round(mean(r[i] for r in voice_rates), 3) for i in range(len(vocabulary))],
        spread=[round(max(SPREAD_FLOOR, pstdev(column)), 3) for column in columns],
        texts=len(person_words), voice_texts=len(voice_words),
    )


def word_margin(text: str, use: WordUse) -> float | None:
    """How much closer the text's word use is to the person's than to the default voice's (module docstring);
    None for a text under MIN_WORDS words."""
    words = _words(text)
    if len(words) < MIN_WORDS:
        return None
    rates = _rates(words, use.words)
    terms = [max(-Z_CAP, min(Z_CAP, (abs(r - v) - abs(r - p)) / s))
             for r, p, v, s in zip(rates, use.person, use.voice, use.spread, strict=True)]
    return round(sum(terms) / len(terms), 4)



def blend_word_use(use: WordUse, texts: Sequence[str]) -> WordUse:
    """The person's word use after new texts (a living profile's update): the new texts' rates of the same words
    blended into the person's means, weighted by text counts. The vocabulary, the default voice and the spreads
    stay: the genre's common words do not change with a few more texts, and a spread needs every text, which the
    profile does not keep."""
    measured = [w for w in map(_words, texts) if w]
    if not measured:
        return use
    rates = [_rates(words, use.words) for words in measured]
    total = use.texts + len(measured)
    person = [round((p * use.texts + sum(r[i] for r in rates)) / total, 3) for i, p in enumerate(use.person)]
    return use.model_copy(update={"person": person, "texts": total})
