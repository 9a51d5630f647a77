"""Checking that a hypothesis's quotes really occur in the user's examples.

A quote counts when, after normalizing whitespace, Unicode forms, typographic quotes and dashes, it occurs
verbatim in one example. Quotes the model split with an ellipsis count when every piece occurs, in order, in
the same example. Quotes too short to identify anything ("the", ",") never count.

A near match: a quote of at least NEAR_MIN_CHARS characters that is not verbatim in any example but is at least
NEAR_RATIO similar (rapidfuzz's ratio: twice the characters both share in order over both lengths, on the normalized
texts) to one real sentence of an example — a copy with a changed word or mark, not a description of the text —
counts, and the evidence shown is that real sentence, flagged as a near match. A description ("The person uses rhetorical questions") is far from every sentence and still fails.

A statement must describe the text, not be it: a small model sometimes returns a stretch of its input as a
"hypothesis" (seen: "<user_text>My American dream is similar to…" from Qwen2.5-Coder-1.5B). A statement that
carries markup tags or repeats COPIED_STATEMENT_WORDS consecutive words of an example is dropped (`copied_statement`);
a short quoted phrase ("writes 'I reckon' where others write 'I think'") stays well under that."""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz import fuzz, process

from ..profiles.model import Evidence, Hypothesis, UserExample
from ..text import SENTENCE_BOUNDARY, copy_stats

MIN_QUOTE_CHARS = 12
NEAR_MIN_CHARS = 20
NEAR_RATIO = 0.9
COPIED_STATEMENT_WORDS = 12
_MARKUP = re.compile(r"</?[A-Za-z_][\w-]*>")
_TRANSLATE = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "\u00a0": " ",
                            # zero-width characters (the prompt layer breaks up control tokens with U+2060)
                            "\u2060": None, "\u200b": None, "\u200c": None, "\u200d": None, "\ufeff": None})
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*")
_EDGE = " \"'.,;:!?()[]"


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    return " ".join(text.split())


def locate(quote: str, normalized_examples: list[str]) -> int | None:
    """Index of the first example containing the quote, or None."""
    pieces = [normalize(p).strip(_EDGE) for p in _ELLIPSIS.split(normalize(quote))]
    pieces = [p for p in pieces if p]
    if not pieces or sum(len(p) for p in pieces) < MIN_QUOTE_CHARS:
        return None
    if len(pieces) > 1 and any(len(p.split()) < 2 for p in pieces):
        return None  # "the ... the ... the" would match almost any text
    patterns = [re.compile(_bounded(piece)) for piece in pieces]
    for index, text in enumerate(normalized_examples):
        position = 0
        for pattern in patterns:
            found = pattern.search(text, position)
            if found is None:
                break
            position = found.end()
        else:
            return index
    return None


def _bounded(piece: str) -> str:
    """The piece as whole words: "her" must not match inside "other"."""
    start = r"(?<!\w)" if piece[0].isalnum() else ""
    end = r"(?!\w)" if piece[-1].isalnum() else ""
    return start + re.escape(piece) + end


def nearest_sentence(quote: str, examples: list[UserExample]) -> tuple[int, str] | None:
    """(example index, the real sentence) most like the quote, if it is a near match (module docstring)."""
    wanted = normalize(quote).strip(_EDGE).lower()
    if len(wanted) < NEAR_MIN_CHARS:
        return None
    candidates = [(index, real) for index, example in enumerate(examples)
                  for real in map(normalize, SENTENCE_BOUNDARY.split(example.text))
                  if real and abs(len(real) - len(wanted)) <= 0.2 * len(wanted)]
    best = process.extractOne(wanted, [real.strip(_EDGE).lower() for _, real in candidates], scorer=fuzz.ratio,
                              score_cutoff=NEAR_RATIO * 100)  # the first of the most similar
    return candidates[best[2]] if best else None


def check(aspect: str, statement: str, quotes: list[str], examples: list[UserExample]) -> Hypothesis:
    normalized = [normalize(e.text) for e in examples]
    evidence = []
    for quote in dict.fromkeys(q.strip() for q in quotes if q.strip()):
        index = locate(quote, normalized)
        if index is not None:
            evidence.append(Evidence(quote=quote, verified=True, example_index=index))
            continue
        near = nearest_sentence(quote, examples)
        if near is not None:
            evidence.append(Evidence(quote=near[1], verified=True, example_index=near[0], near_match=quote))
        else:
            evidence.append(Evidence(quote=quote, verified=False))
    return Hypothesis(
        aspect=aspect,
        statement=statement.strip(),
        evidence=evidence,
        supported=any(e.verified for e in evidence),
    )


def copied_statement(statement: str, examples: list[UserExample]) -> bool:
    """True when a proposed statement is a copy of the input — markup tags, or COPIED_STATEMENT_WORDS consecutive
    words of one example — rather than a statement about the person."""
    if _MARKUP.search(statement):
        return True
    return copy_stats(statement, [e.text for e in examples], n=COPIED_STATEMENT_WORDS)["copy_rate"] > 0
