"""Fitting the user's examples into the model's context: the longest are truncated (with a warning naming each)
rather than refused, since a profile from the first few thousand characters of each text is still useful."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InputError
from ..llm import LLMClient
from ..profiles.model import UserExample
from ..text import CHARS_PER_TOKEN

PROMPT_OVERHEAD_TOKENS = 400
TRUNCATION_MARK = " […truncated]"
TokenCounter = Callable[[str], int]


def clip(text: str, chars: int) -> str:
    """The text cut to `chars` characters, the cut marked."""
    return text if len(text) <= chars else text[: max(0, chars - len(TRUNCATION_MARK))] + TRUNCATION_MARK


def token_counter(client: LLMClient) -> TokenCounter | None:
    """The backend's exact token count, where its capabilities say it has one."""
    backend = client.backend
    return backend.count_tokens if backend.capabilities.count_tokens else None


def fit_examples(
    examples: list[UserExample], context_tokens: int | None, reserve_tokens: int,
    count_tokens: TokenCounter | None = None,
) -> tuple[list[UserExample], list[int]]:
    """Truncate the longest examples so that all of them fit in the context; return the truncated indices.

    Sizes are the backend's token counts where it can count (`count_tokens`), else characters against a budget
    estimated at CHARS_PER_TOKEN. Truncation (with a warning) rather than refusal: a profile from the first few
    thousand characters of each text is still useful, and the caller learns exactly which examples were cut."""
    if context_tokens is None:
        return examples, []
    room_tokens = context_tokens - reserve_tokens - PROMPT_OVERHEAD_TOKENS
    chars = [len(e.text) + len(e.prompt or "") for e in examples]
    if count_tokens is None:
        budget, lengths = int(room_tokens * CHARS_PER_TOKEN), chars
    else:
        budget = room_tokens
        lengths = [count_tokens(e.text) + (count_tokens(e.prompt) if e.prompt else 0) for e in examples]
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
    for index, (example, length, size) in enumerate(zip(examples, lengths, chars, strict=True)):
        if length > cap:
            cap_chars = cap if count_tokens is None else size * cap // length
            room = max(0, cap_chars - len(TRUNCATION_MARK))
            prompt = (example.prompt or "")[: room // 2] or None  # a huge prompt must not crowd out the text
            keep = room - len(prompt or "")
            fitted.append(example.model_copy(update={"prompt": prompt, "text": example.text[:keep] + TRUNCATION_MARK}))
            truncated.append(index)
        else:
            fitted.append(example)
    return fitted, truncated
