"""Text units every stage shares, so "a sentence" means one thing wherever text is split, and a token estimate one
thing wherever tokens are planned."""

from __future__ import annotations

import math
import re

# A sentence ends at . ! ? or … (with any closing quotes or brackets after it) followed by space, or at a line break.
SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n+")
# Where the model's own tokenizer cannot be asked (the backend's `count_tokens` capability): English prose runs ~4
# characters per token; 3.5 keeps a margin for numbers and names.
CHARS_PER_TOKEN = 3.5
WORD = re.compile(r"\w+", re.UNICODE)


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` takes (rounded up), from its length."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def split_sentences(text: str) -> list[str]:
    """The text's sentences and lines, stripped, empty ones dropped."""
    return [piece.strip() for piece in SENTENCE_BOUNDARY.split(text) if piece and piece.strip()]


def word_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    words = [w.lower() for w in WORD.findall(text)]
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def copy_stats(output: str, sources: list[str], n: int = 8) -> dict[str, float]:
    """Share of the output's word n-grams found in the sources, and the longest copied span in words: how much of a
    text repeats texts it was shown (word 8-grams: shorter runs are common phrases, longer ones are copying)."""
    grams = word_ngrams(output, n)
    source = {g for d in sources for g in word_ngrams(d, n)}
    if not grams:
        return {"copy_rate": 0.0, "longest_copied_words": 0.0}
    hits = [g in source for g in grams]
    longest, run = 0, 0
    for hit in hits:
        run = run + 1 if hit else 0
        longest = max(longest, run)
    return {"copy_rate": sum(hits) / len(hits), "longest_copied_words": float(longest + n - 1 if longest else 0)}
