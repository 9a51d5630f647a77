"""Hypotheses that explain a measured fact (contrastive.py): the proposal is shown the person's distinctive facts,
each with the way the person differs (`direction_of`), and states them as hypotheses. Code decides which of those
statements a fact checks (`explains`: it names what the fact measures, the way the person differs) and which of the
person's sentences show the difference as evidence (`showing`). A statement the fact does not check is left to the
LLM's verification like any other."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..profiles.model import Measure
from .facts import PUNCTUATION, measure, metric_label

# What a statement about a metric must name, as word beginnings: a hypothesis that explains a measured difference
# ("The person builds long paragraphs ...") is checked by the measurement only when it is about that measurement; a
# small model that tags "The person is confident" with the paragraph metric gets no such check (contrastive.py).
_TERMS = {"vocabulary": ("vocabular", "repet", "repeat", "variet", "varied", "divers"),
          "contractions": ("contraction",), "numbers_as_digits": ("number", "digit", "numeral", "figure"),
          "first_person": ("first-person", "first person", "i", "we", "me", "my", "our", "himself", "herself",
                           "themself", "personal"),
          "second_person": ("second-person", "second person", "you", "your", "reader", "address"),
          "lowercase_starts": ("lowercase", "lower-case", "lower case", "capital"),
          "caps_words": ("caps", "capital", "upper")}
_STATEMENT_WORD = re.compile(r"[a-z]+(?:[-'’][a-z]+)*")
# A length is named with its size: "short sentences", "longer, denser paragraphs", "words per sentence", "sentence
# length" — "more paragraphs" or "more sentences" count paragraphs, not their length, and are not this measurement.
_SIZE = r"(?:long|longer|lengthy|short|shorter|brief|briefer|concise|compact|big|bigger|large|larger|small|smaller|dense|denser|unbroken)"


def _sized(unit: str, *more: str) -> re.Pattern[str]:
    return re.compile("|".join([rf"\b{_SIZE}\W+(?:[\w-]+\W+){{0,2}}?{unit}s?\b",
                                rf"\b{unit}s?\W+(?:[\w-]+\W+){{0,2}}?{_SIZE}\b", rf"\b\w+s? per {unit}\b",
                                rf"\b{unit} length", *more]))


_LENGTHS = {"sentence_words": _sized("sentence"), "paragraph_sentences": _sized("paragraph"),
            "word_letters": _sized("word", r"\b(?:plain|simple|simpler|everyday|common|fancy)\W+(?:[\w-]+\W+){0,2}?words?\b",
                                   r"\bletter", r"\bsyllab")}


def names_metric(statement: str, metric: str) -> bool:
    """Whether a statement speaks of what `metric` measures (a word of it begins with one of the metric's terms)."""
    kind, _, argument = metric.partition(":")
    if kind == "punctuation" and argument in PUNCTUATION:
        # seven letters: "parenth", not "parent" (a statement about someone's parents is not about brackets)
        terms: tuple[str, ...] = (argument[:7], PUNCTUATION[argument][0].split()[0][:7], "punctuation")
    elif kind in ("opens_with", "ends_with"):
        terms = ("open", "start", "begin") if kind == "opens_with" else ("end", "close", "sign", "finish")
        terms += tuple(w for w in _STATEMENT_WORD.findall(argument.lower()) if len(w) > 2)
    elif kind == "uses":
        terms = tuple(argument.lower().split("|"))
    elif metric in _LENGTHS:
        return bool(_LENGTHS[metric].search(statement.lower()))
    else:
        terms = _TERMS.get(metric, ())
    lowered = statement.lower()
    words = _STATEMENT_WORD.findall(lowered)
    return any((" " in term and term in lowered) or any(w == term if len(term) <= 3 else w.startswith(term)
                                                         for w in words) for term in terms)


# Words that say which way a statement about a measurement goes ("more commas", "shorter sentences", "never uses").
_UP = frozenset("more longer long lengthy many often frequent frequently higher high larger large bigger big greater "
                "lots heavy heavily plenty extensive dense denser densely unbroken always repeatedly fancy".split())
_DOWN = frozenset("less fewer shorter short rarely seldom never avoid avoids no lower low smaller small few brief "
                  "briefer concise compact sparing sparingly without not hardly simple simpler plain everyday "
                  "common".split())


def explains(statement: str, m: Measure) -> bool:
    """Whether a statement is about what `m` measures and goes the way the person differs from the contrast: it
    names the metric, and where it says which way ("more", "shorter", "never"), that is the sign of the person's z.
    A statement saying both ways, or about another measurement, is not checked by this one."""
    if not names_metric(statement, m.metric) or m.z is None:
        return False
    words = set(_STATEMENT_WORD.findall(statement.lower()))
    up, down = bool(words & _UP), bool(words & _DOWN)
    if up and down:
        return False
    return (up and m.z > 0) or (down and m.z < 0) or (not up and not down and m.z > 0)


# Metrics one sentence can show; paragraph length, vocabulary variety and a text's opening cannot be seen in one.
_SENTENCE_METRICS = ("sentence_words", "word_letters", "contractions", "numbers_as_digits", "first_person",
                     "second_person", "caps_words")


def shown_in(quote: str, m: Measure) -> float | None:
    """How far one quote shows the person's difference (positive: it goes the person's way, as far as it does), or
    None where a single quote cannot show this metric. A hypothesis about question marks should quote one."""
    kind = m.metric.partition(":")[0]
    if m.z is None or m.contrast_mean is None or not (m.metric in _SENTENCE_METRICS or kind in ("punctuation", "uses")):
        return None
    value = measure(m.metric, quote)
    if value is None:  # a quote without numbers says nothing of how numbers are written: it does not show it
        return 0.0
    return (value - m.contrast_mean) * (1 if m.z > 0 else -1)


def showing(quotes: Sequence[str], sentences: Sequence[str], m: Measure, most: int = 2) -> list[str]:
    """The quotes that show the difference; where none does, the `most` sentences that go the person's way and are
    nearest their own mean (typical of them, not the most extreme); the quotes as they were where one quote cannot
    show the metric."""
    scored = [(shown_in(q, m), q) for q in quotes]
    if any(score is None for score, _ in scored):
        return list(quotes)
    kept = [q for score, q in scored if score is not None and score > 0]
    if kept:
        return kept
    going = [s for s in sentences if (shown_in(s, m) or 0.0) > 0]
    return sorted(going, key=lambda s: abs((measure(m.metric, s) or 0.0) - m.mean))[:most] or list(quotes)


_LENGTH_UNITS = {"sentence_words": "sentences", "paragraph_sentences": "paragraphs", "word_letters": "words"}


def direction_of(m: Measure) -> str:
    """Which way the person differs from the contrast, in two or three words a small model cannot misread: "longer
    paragraphs", "fewer commas" ("Paragraphs average 6.2 sentences — three times a typical answer's 2.3" was stated
    by Qwen2.5-Coder-1.5B as "writes more paragraphs")."""
    up = (m.z or 0.0) > 0
    kind, _, argument = m.metric.partition(":")
    if m.metric in _LENGTH_UNITS:
        return f"{'longer' if up else 'shorter'} {_LENGTH_UNITS[m.metric]}"
    if m.metric == "vocabulary":
        return "more varied vocabulary" if up else "less varied vocabulary"
    if m.metric in ("numbers_as_digits", "lowercase_starts"):
        return f"{'more' if up else 'fewer'} {metric_label(m.metric)}"
    if kind in ("opens_with", "ends_with", "uses"):
        return f"{'more often' if up else 'less often'}: {metric_label(m.metric)}"
    return f"{'more' if up else 'fewer'} {metric_label(m.metric)}"
