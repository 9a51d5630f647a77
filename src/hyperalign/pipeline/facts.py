"""Measured style facts: a deterministic stylometric profile of a person's texts, computed by code, not by the LLM.

Each fact is a statement with numbers ("Sentences average 17 words; half are between 11 and 23 words long.") that
sits in the profile beside the LLM's hypotheses — editable and pinnable like them — and carries its `Measure`: the
metric, the person's mean over their texts and the spread between texts. The same code measures any text (`measure`),
so a fact can be checked on a candidate: that is what adherence and best-of-N reranking use (`adherence.py`).

Distinctive words are found by log-odds with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008) against
a background of general English word frequencies: the `wordfreq` package's data (installed with hyperalign), never
other people's texts — so nothing about one person's profile depends on anyone else."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from statistics import mean, pstdev, quantiles

from ..profiles.model import Evidence, Fact, Measure
from ..text import SENTENCE_BOUNDARY

_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*|\d+(?:[.,:]\d+)*")
_PARAGRAPH = re.compile(r"\n\s*\n")
_CONTRACTION = re.compile(r"\b\w+['’](?:t|re|ve|ll|d|m|s)\b", re.IGNORECASE)
NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion".split())
FIRST_PERSON = frozenset("i me my mine myself we us our ours ourselves".split())
SECOND_PERSON = frozenset("you your yours yourself yourselves".split())
PUNCTUATION: dict[str, tuple[str, re.Pattern[str]]] = {
    "comma": ("commas", re.compile(r",")),
    "semicolon": ("semicolons", re.compile(r";")),
    "colon": ("colons", re.compile(r":(?!\d)")),
    "dash": ("dashes", re.compile(r"—|–|(?<=\s)-(?=\s)|--")),
    "exclamation": ("exclamation marks", re.compile(r"!")),
    "question": ("question marks", re.compile(r"\?")),
    "ellipsis": ("ellipses", re.compile(r"\.\.\.|…")),
    "parenthesis": ("parentheses", re.compile(r"\(")),
    "quote": ("quotation marks", re.compile(r"[\"“”]")),
}


@dataclass(frozen=True)
class Text:
    """One text cut into what the metrics count."""

    raw: str
    words: list[str]
    sentences: list[list[str]]
    paragraphs: list[list[list[str]]]

    @classmethod
    def of(cls, raw: str) -> Text:
        text = raw.replace("\r\n", "\n").strip()
        blocks = [b for b in _PARAGRAPH.split(text) if b.strip()]
        if len(blocks) <= 1:
            blocks = [line for line in text.split("\n") if line.strip()]
        paragraphs = [[_WORD.findall(s) for s in SENTENCE_BOUNDARY.split(" ".join(b.split())) if _WORD.findall(s)]
                      for b in blocks]
        paragraphs = [p for p in paragraphs if p]
        sentences = [s for p in paragraphs for s in p]
        return cls(text, _WORD.findall(text), sentences, paragraphs)

    def per_thousand(self, count: int) -> float:
        return 1000 * count / max(1, len(self.words))


def _numbers(t: Text) -> float | None:
    digits = sum(1 for w in t.words if w[0].isdigit())
    spelled = sum(1 for w in t.words if w.lower() in NUMBER_WORDS)
    return digits / (digits + spelled) if digits + spelled else None


def _mattr(words: list[str], window: int = 50) -> float | None:
    """Moving-average type-token ratio: vocabulary variety that does not shrink with length."""
    lowered = [w.lower() for w in words]
    if len(lowered) < window:
        return len(set(lowered)) / len(lowered) if lowered else None
    return mean(len(set(lowered[i:i + window])) / window for i in range(0, len(lowered) - window + 1, 10))


def _mean(values: list[int]) -> float | None:
    return mean(values) if values else None


def _punctuation_rate(pattern: re.Pattern[str]) -> Callable[[Text], float | None]:
    return lambda t: t.per_thousand(len(pattern.findall(t.raw)))


# metric -> (value of one text, or None where the text says nothing about it)
METRICS: dict[str, Callable[[Text], float | None]] = {
    "sentence_words": lambda t: mean(len(s) for s in t.sentences) if t.sentences else None,
    "paragraph_sentences": lambda t: mean(len(p) for p in t.paragraphs) if t.paragraphs else None,
    "word_letters": lambda t: _mean([len(w) for w in t.words if w[0].isalpha()]),
    "vocabulary": lambda t: _mattr(t.words),
    "contractions": lambda t: t.per_thousand(len(_CONTRACTION.findall(t.raw))),
    "numbers_as_digits": _numbers,
    "first_person": lambda t: t.per_thousand(sum(w.lower() in FIRST_PERSON for w in t.words)),
    "second_person": lambda t: t.per_thousand(sum(w.lower() in SECOND_PERSON for w in t.words)),
    "lowercase_starts": lambda t: (sum(s[0][0].islower() for s in t.sentences) / len(t.sentences)
                                   if t.sentences else None),
    "caps_words": lambda t: t.per_thousand(sum(len(w) > 1 and w.isupper() and w.isalpha() for w in t.words)),
    **{f"punctuation:{name}": _punctuation_rate(pattern) for name, (_, pattern) in PUNCTUATION.items()},
}
# The least spread a metric is given, so that a person whose texts agree exactly (0 semicolons in every text) is
# still matched by a candidate that is close, and distances stay comparable between metrics.
SPREAD_FLOOR = {"sentence_words": 2.0, "paragraph_sentences": 0.7, "word_letters": 0.15, "vocabulary": 0.03,
                "numbers_as_digits": 0.15, "lowercase_starts": 0.1}
RATE_FLOOR = 2.0  # per 1,000 words


def measure(metric: str, text: str | Text) -> float | None:
    """One metric of any text, by the same code that measured the person: what makes a fact checkable."""
    t = text if isinstance(text, Text) else Text.of(text)
    kind, _, argument = metric.partition(":")
    if kind == "opens_with":
        return float(" ".join(t.raw.split()).lower().startswith(argument.lower()))
    if kind == "ends_with":
        return float(" ".join(t.raw.split()).lower().endswith(argument.lower()))
    if kind == "uses":  # "uses:word|word|...": how often any of them is used
        joined = " ".join(t.words).lower()
        return t.per_thousand(sum(len(re.findall(rf"(?<![\w']){re.escape(w)}(?![\w'])", joined))
                                  for w in argument.split("|")))
    function = METRICS.get(metric)
    return function(t) if function else None


def measure_of(metric: str, values: Sequence[float], low: float | None = None, high: float | None = None) -> Measure:
    kind = metric.partition(":")[0]
    floor = SPREAD_FLOOR.get(metric, 0.25 if kind in ("opens_with", "ends_with") else RATE_FLOOR)
    average = mean(values)
    spread = max(pstdev(values) if len(values) > 1 else 0.0, floor, 0.1 * abs(average))
    return Measure(metric=metric, mean=round(average, 3), spread=round(spread, 3),
                   low=None if low is None else round(low, 3), high=None if high is None else round(high, 3))


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = quantiles(values, n=4, method="inclusive")
    return q1, q3


LABELS = {"sentence_words": "words per sentence", "paragraph_sentences": "sentences per paragraph",
          "word_letters": "letters per word", "vocabulary": "different words in 50", "contractions": "contractions",
          "numbers_as_digits": "numbers as digits", "first_person": "first-person words",
          "second_person": "second-person words", "lowercase_starts": "lowercase sentence starts",
          "caps_words": "ALL-CAPS words"}


def metric_label(metric: str) -> str:
    """A short name of what a metric measures, for tables ("exclamation marks", "opens with “Right then.”")."""
    kind, _, argument = metric.partition(":")
    if kind == "punctuation" and argument in PUNCTUATION:
        return PUNCTUATION[argument][0]
    if kind in ("opens_with", "ends_with"):
        return f"{'opens' if kind == 'opens_with' else 'ends'} with “{argument}”"
    if kind == "uses":
        words = argument.split("|")
        return "the words " + ", ".join(f"“{w}”" for w in words[:4]) + (" …" if len(words) > 4 else "")
    return LABELS.get(metric, metric)


def statement_of(metric: str, m: Measure) -> str | None:
    """The fact as a person reads it; None when the number is too unremarkable to state."""
    kind, _, argument = metric.partition(":")
    rate = round(m.mean)
    if metric == "sentence_words":
        return f"Sentences average {m.mean:.0f} words; half are between {m.low:.0f} and {m.high:.0f} words long."
    if metric == "paragraph_sentences":
        return f"Paragraphs average {m.mean:.1f} sentences."
    if metric == "word_letters":
        return f"Words average {m.mean:.1f} letters."
    if metric == "contractions":
        return ("Uses no contractions (writes 'do not', not 'don't')." if rate == 0 else
                f"Uses about {rate} contractions (don't, it's) per 1,000 words.")
    if metric == "numbers_as_digits":
        return f"Writes {m.mean:.0%} of numbers as digits, the rest spelled out."
    if metric in ("first_person", "second_person"):
        who = "first-person words (I, we, my)" if metric == "first_person" else "second-person words (you, your)"
        return f"Uses no {who}." if rate == 0 else f"Uses about {rate} {who} per 1,000 words."
    if metric == "lowercase_starts":
        return (f"Starts {m.mean:.0%} of sentences with a lowercase letter." if m.mean >= 0.05 else
                "Starts sentences with a capital letter.")
    if metric == "caps_words":
        return (f"Writes about {rate} ALL-CAPS words per 1,000 words." if m.mean >= 1 else
                "Does not write words in ALL CAPS.")
    if metric == "vocabulary":
        return f"Vocabulary variety: about {m.mean * 50:.0f} different words in every 50."
    if kind == "punctuation":
        label = PUNCTUATION[argument][0]
        return f"Never uses {label}." if m.mean < 0.5 else f"Uses about {m.mean:.0f} {label} per 1,000 words."
    if kind == "opens_with":
        return f"Opens {m.mean:.0%} of texts with “{argument}”."
    if kind == "ends_with":
        return f"Ends {m.mean:.0%} of texts with “{argument}”."
    if kind == "uses":
        words = ", ".join(f"“{w}”" for w in argument.split("|"))
        return f"Uses these words far more often than general English does: {words} (together about {rate} per 1,000 words)."
    return None


def shared_edge(texts: list[str], last: bool) -> str | None:
    """The longest opening (or closing) of up to 5 words that at least half the texts, and at least two, share."""
    lines = []
    for text in texts:
        rows = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
        if rows:
            lines.append((rows[-1] if last else rows[0]).split())
    best = None
    for size in range(1, 6):
        edges = Counter(" ".join(w[-size:] if last else w[:size]) for w in lines if len(w) >= size)
        if not edges:
            break
        edge, count = edges.most_common(1)[0]
        if count >= max(2, math.ceil(len(texts) / 2)):
            best = edge
    return best


@cache
def background_frequency(word: str, language: str) -> float:
    from wordfreq import word_frequency  # general English (or `language`) word frequencies

    return float(word_frequency(word, language))


def content_words(text: str) -> list[str]:
    """The text's words, lowercased, letters only (numbers left out): what word counts are kept of."""
    return [w.lower() for w in _WORD.findall(text) if w[0].isalpha()]


def distinctive_words(texts: list[str], *, top: int = 8, language: str = "en", min_z: float = 3.0) -> list[str]:
    """Words this person uses far more than the language at large does: weighted log-odds with an informative
    Dirichlet prior from the background frequencies; only words used at least 3 times and in at least 2 texts,
    so that one text's topic does not pass for a habit."""
    try:
        import wordfreq  # noqa: F401
    except ImportError:
        return []
    per_text = [Counter(content_words(t)) for t in texts]
    counts: Counter[str] = sum(per_text, Counter())
    total = sum(counts.values())
    prior_total, background_total = 1_000.0, 1e9
    scored = []
    for word, count in counts.items():
        documents = sum(1 for c in per_text if word in c)
        if count < 3 or documents < 2 or len(word) < 2:
            continue
        frequency = max(background_frequency(word, language), 1e-9)
        alpha, background = prior_total * frequency, background_total * frequency
        delta = (math.log((count + alpha) / (total + prior_total - count - alpha))
                 - math.log((background + alpha) / (background_total + prior_total - background - alpha)))
        z = delta / math.sqrt(1 / (count + alpha) + 1 / (background + alpha))
        if z >= min_z:
            scored.append((z, word))
    return [word for _, word in sorted(scored, reverse=True)[:top]]


def merge_facts(old: Sequence[Fact], new: Sequence[Fact], old_texts: int, new_texts: int) -> list[Fact]:
    """The facts after new texts: each metric's numbers averaged, weighted by the texts behind them, and restated.
    A fact a person pinned or reworded stays as the person left it; a metric only one side has is kept as it is."""
    merged, by_metric = [], {f.measure.metric: f for f in new}
    for fact in old:
        fresh = by_metric.pop(fact.measure.metric, None)
        if fresh is None or fact.pinned or fact.origin == "person":
            merged.append(fact)
            continue
        a, b, w = fact.measure, fresh.measure, new_texts / max(1, old_texts + new_texts)

        def blend(x: float | None, y: float | None, w: float = w) -> float | None:
            return None if x is None or y is None else round((1 - w) * x + w * y, 3)

        m = Measure(metric=a.metric, mean=blend(a.mean, b.mean) or 0.0, spread=max(a.spread, b.spread),
                    low=blend(a.low, b.low), high=blend(a.high, b.high))
        statement = statement_of(a.metric, m) or fact.statement
        merged.append(fact.model_copy(update={"measure": m, "statement": statement}))
    return merged + list(by_metric.values())


def edge_metrics(texts: Sequence[str]) -> list[tuple[str, list[Evidence]]]:
    """The opening and the sign-off most of the texts share, as metrics ("opens_with:Right then."), each with up to
    two of the texts as evidence when it is long enough to quote."""
    found = []
    for last, kind in ((False, "opens_with"), (True, "ends_with")):
        edge = shared_edge(list(texts), last)
        if edge:
            quotes = [Evidence(quote=edge, verified=True, example_index=i) for i, t in enumerate(texts)
                      if measure(f"{kind}:{edge}", t)][:2]
            found.append((f"{kind}:{edge}", quotes if len(edge) >= 12 else []))
    return found


def style_facts(texts: Sequence[str], *, language: str = "en") -> list[Fact]:
    """The person's measured style facts, from their texts alone."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        return []
    parsed = [Text.of(t) for t in texts]
    facts = []

    def fact(metric: str, statement_low_high: tuple[float | None, float | None] = (None, None),
             evidence: list[Evidence] | None = None) -> None:
        values = [v for v in (measure(metric, t) for t in parsed) if v is not None]
        if not values:
            return
        m = measure_of(metric, values, *statement_low_high)
        statement = statement_of(metric, m)
        if statement:
            facts.append(Fact(statement=statement, evidence=evidence or [], measure=m))

    sentence_lengths = [float(len(s)) for t in parsed for s in t.sentences]
    if sentence_lengths:
        fact("sentence_words", quartiles(sentence_lengths))
    for metric in METRICS:
        if metric != "sentence_words":
            fact(metric)
    for metric, quotes in edge_metrics(texts):
        fact(metric, evidence=quotes)
    words = distinctive_words(list(texts), language=language)
    if words:
        fact("uses:" + "|".join(words))
    return facts
