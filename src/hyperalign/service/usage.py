"""What one chat request used: its tokens, as the upstream reported them, or estimated where it reported none (a
stream without `stream_options.include_usage`). The per-user token budget (budgets.py) and the token counters of
/metrics both read it."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from .upstream import message_text

CHARS_PER_TOKEN = 4  # the usual estimate for English text with BPE tokenizers, where no count was reported


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:  # a request of two upstream calls (hyperalign:revise)
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                     self.estimated or other.estimated)


NOTHING = Usage(0, 0)


def _estimate(characters: int) -> int:
    return math.ceil(characters / CHARS_PER_TOKEN)


def prompt_estimate(messages: list[dict[str, Any]]) -> int:
    return _estimate(sum(len(message_text(m.get("content"))) for m in messages))


def _reported(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int) and prompt >= 0 and completion >= 0:
        return Usage(prompt, completion)
    return None


def of_completion(content: bytes, messages: list[dict[str, Any]]) -> Usage:
    """A whole completion's usage: its `usage` field, else an estimate from the texts."""
    try:
        parsed = json.loads(content)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and (reported := _reported(parsed.get("usage"))) is not None:
        return reported
    choices = parsed.get("choices") if isinstance(parsed, dict) else None
    written = sum(len(message_text((c.get("message") or {}).get("content"))) for c in choices or []
                  if isinstance(c, dict))
    return Usage(prompt_estimate(messages), _estimate(written), estimated=True)


class StreamMeter:
    """Passes a stream's events through while it counts what they carry; `usage` once the stream has ended."""

    def __init__(self, messages: list[dict[str, Any]]):
        self.messages, self.characters = messages, 0
        self.reported: Usage | None = None

    async def watch(self, events: AsyncIterator[str]) -> AsyncIterator[str]:
        async for data in events:
            self._count(data)
            yield data

    def _count(self, data: str) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        self.reported = _reported(event.get("usage")) or self.reported
        for choice in event.get("choices") or []:
            if isinstance(choice, dict) and isinstance(choice.get("delta"), dict):
                self.characters += len(message_text(choice["delta"].get("content")))

    @property
    def usage(self) -> Usage:
        if self.reported is not None:
            return self.reported
        return Usage(prompt_estimate(self.messages), _estimate(self.characters), estimated=True)


def first_text(parsed: Any) -> str | None:
    """A parsed chat completion's first choice's text; None where it has none."""
    choices = parsed.get("choices") if isinstance(parsed, dict) else None
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = first.get("message")
    return message_text(message.get("content")) if isinstance(message, dict) else None


def add_usage(parsed: dict[str, Any], usage: Usage) -> None:
    """Count `usage` (more upstream calls made for this response) into a parsed completion's own `usage`."""
    spent = parsed.get("usage")
    if not isinstance(spent, dict):
        return
    for field, added in (("prompt_tokens", usage.prompt_tokens), ("completion_tokens", usage.completion_tokens),
                         ("total_tokens", usage.total)):
        if isinstance(spent.get(field), int):
            spent[field] += added


def count_calls(chosen_answer: dict[str, Any], spent: list[Usage], chosen: int) -> Usage:
    """A response made of several upstream calls (`spent`, the client's own answer first) that sends the answer of
    call `chosen`: every other call's usage is counted into that answer's `usage`; what the calls after the first
    cost is returned (the first is counted by the chat endpoint)."""
    others, after_first = NOTHING, NOTHING
    for i, usage in enumerate(spent):
        others = others if i == chosen else others + usage
        after_first = after_first if i == 0 else after_first + usage
    add_usage(chosen_answer, others)
    return after_first
