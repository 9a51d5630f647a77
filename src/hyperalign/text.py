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


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` takes (rounded up), from its length."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def split_sentences(text: str) -> list[str]:
    """The text's sentences and lines, stripped, empty ones dropped."""
    return [piece.strip() for piece in SENTENCE_BOUNDARY.split(text) if piece and piece.strip()]
