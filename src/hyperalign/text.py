"""Text units every stage shares, so "a sentence" means one thing wherever text is split."""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … (with any closing quotes or brackets after it) followed by space, or at a line break.
SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """The text's sentences and lines, stripped, empty ones dropped."""
    return [piece.strip() for piece in SENTENCE_BOUNDARY.split(text) if piece and piece.strip()]
