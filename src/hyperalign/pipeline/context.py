"""Fitting the user's examples into the model's context: the longest are truncated (with a warning naming each)
rather than refused, since a profile from the first few thousand characters of each text is still useful."""

from __future__ import annotations

from ..errors import InputError
from ..profiles.model import UserExample

# Rough: English prose runs ~4 characters per token; 3.5 keeps a margin for numbers and names.
CHARS_PER_TOKEN = 3.5
PROMPT_OVERHEAD_TOKENS = 400
TRUNCATION_MARK = " […truncated]"


def fit_examples(
    examples: list[UserExample], context_tokens: int | None, reserve_tokens: int
) -> tuple[list[UserExample], list[int]]:
    """Truncate the longest examples so that all of them fit in the context; return the truncated indices.

    Truncation (with a warning) rather than refusal: a profile from the first few thousand characters of each
    text is still useful, and the caller learns exactly which examples were cut."""
    if context_tokens is None:
        return examples, []
    budget = int((context_tokens - reserve_tokens - PROMPT_OVERHEAD_TOKENS) * CHARS_PER_TOKEN)
    lengths = [len(e.text) + len(e.prompt or "") for e in examples]
    if budget <= 0:
        raise InputError(f"the model's context ({context_tokens} tokens) leaves no room for examples")
    if sum(lengths) <= budget:
        return examples, []
    # Water-filling: the largest per-example cap under which everything fits.
    cap, remaining = budget, budget
    for count, length in enumerate(sorted(lengths), start=0):
        share = remaining // (len(lengths) - count)
        if length > share:
            cap = share
            break
        remaining -= length
    fitted, truncated = [], []
    for index, (example, length) in enumerate(zip(examples, lengths, strict=True)):
        if length > cap:
            room = max(0, cap - len(TRUNCATION_MARK))
            prompt = (example.prompt or "")[: room // 2] or None  # a huge prompt must not crowd out the text
            keep = room - len(prompt or "")
            fitted.append(example.model_copy(update={"prompt": prompt, "text": example.text[:keep] + TRUNCATION_MARK}))
            truncated.append(index)
        else:
            fitted.append(example)
    return fitted, truncated
