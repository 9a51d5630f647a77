"""Code edits: the person's habits that code can apply to any text safely, after the model writes (a lever of
steer.py, like the opening and sign-off). A small model reads "never uses exclamation marks" and writes them anyway,
and token biases do not reach every backend; a text edit does, the same way every time, and is shown as applied.

Only edits that keep the text's meaning are made:
- punctuation the person never uses and the default voice does: exclamation marks become full stops ("?!" a
  question mark), semicolons commas, dashes between words commas, ellipses full stops. Colons, parentheses and
  quotation marks are left alone: times, lists and quotations need them.
- contractions, where the person never writes them and the default voice does: the unambiguous ones written out
  ("don't" -> "do not", "I'm" -> "I am", "we'll" -> "we will"); "'s" and "'d" stay (is/has, would/had).
- contractions, where the person writes them far more than the default voice: the common pairs contracted
  ("do not" -> "don't", "it is" -> "it's", "I am" -> "I'm").
Case is kept ("Do not" -> "Don't"); the straight apostrophe is written, as most people type it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

Edit = Literal["no-exclamation", "no-semicolon", "no-dash", "no-ellipsis", "expand-contractions",
               "use-contractions"]
# The punctuation metric (facts.PUNCTUATION) whose "never" each edit serves.
PUNCTUATION_EDITS: dict[str, Edit] = {"exclamation": "no-exclamation", "semicolon": "no-semicolon",
                                      "dash": "no-dash", "ellipsis": "no-ellipsis"}
DESCRIBED: dict[Edit, str] = {"no-exclamation": "‘!’ made ‘.’", "no-semicolon": "‘;’ made ‘,’",
                              "no-dash": "dashes made commas", "no-ellipsis": "ellipses made ‘.’",
                              "expand-contractions": "contractions written out",
                              "use-contractions": "common pairs contracted"}

_APOSTROPHE = "['’]"
_EXPANDED = {"can't": "cannot", "won't": "will not", "shan't": "shall not", "ain't": "is not"}
_NOT = re.compile(rf"\b(\w+)n{_APOSTROPHE}t\b", re.IGNORECASE)
_PIECES = {"m": "am", "re": "are", "ve": "have", "ll": "will"}
_PIECE = re.compile(rf"\b(\w+){_APOSTROPHE}(m|re|ve|ll)\b", re.IGNORECASE)
_CONTRACTED = {"do not": "don't", "does not": "doesn't", "did not": "didn't", "is not": "isn't",
               "are not": "aren't", "was not": "wasn't", "were not": "weren't", "have not": "haven't",
               "has not": "hasn't", "had not": "hadn't", "will not": "won't", "would not": "wouldn't",
               "should not": "shouldn't", "could not": "couldn't", "cannot": "can't", "can not": "can't",
               "I am": "I'm", "it is": "it's", "that is": "that's", "there is": "there's", "you are": "you're",
               "we are": "we're", "they are": "they're", "I will": "I'll", "you will": "you'll", "we will": "we'll"}
_PAIR = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(_CONTRACTED, key=len, reverse=True)) + r")\b",
                   re.IGNORECASE)


def _cased(original: str, replacement: str) -> str:
    """`replacement` with `original`'s first letter's case ("Do not" -> "Don't"; "I" stays capital)."""
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _expand(text: str) -> str:
    def whole(match: re.Match[str]) -> str:
        word = match.group(0)
        plain = word.lower().replace("’", "'")
        if plain in _EXPANDED:
            return _cased(word, _EXPANDED[plain])
        return f"{match.group(1)} not"

    text = _NOT.sub(whole, text)
    return _PIECE.sub(lambda m: f"{m.group(1)} {_PIECES[m.group(2).lower()]}", text)


def _contract(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        key = next(k for k in _CONTRACTED if k.lower() == found.lower())
        replacement = _CONTRACTED[key]
        return replacement if key.startswith("I ") else _cased(found, replacement)

    return _PAIR.sub(one, text)


_EDITS: dict[Edit, Callable[[str], str]] = {
    "no-exclamation": lambda t: re.sub(r"\?!+", "?", re.sub(r"(?<!\?)!+", ".", t)),
    "no-semicolon": lambda t: re.sub(r"\s*;\s*", ", ", t),
    "no-dash": lambda t: re.sub(r"\s*(?:—|–|(?<=\s)--?(?=\s))\s*", ", ", t),
    "no-ellipsis": lambda t: re.sub(r"\s*(?:…|\.{3,})", ".", t),
    "expand-contractions": _expand,
    "use-contractions": _contract,
}


# Edits that act on one character at a time, so they apply to a stream piece by piece (a contraction can be split
# between two pieces, "don" + "'t", and is edited in whole answers only).
CHARACTER_EDITS: tuple[Edit, ...] = ("no-exclamation", "no-semicolon", "no-dash", "no-ellipsis")


def apply_edits(text: str, edits: list[Edit]) -> str:
    for edit in edits:
        text = _EDITS[edit](text)
    return text
