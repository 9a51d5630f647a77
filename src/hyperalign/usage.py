"""What LLM calls cost, in one type, and a scoped collector of it.

`Usage` counts the calls sent to a backend, the calls answered without one (from the completion cache, or by an
identical call already in flight), and the prompt and completion tokens of all of them: the size of the work, paid
for this time or not, so a resumed run reports the same cost as a fresh one. `Usage.of(completion)` is one call's.

Of the prompt tokens, `cached_prompt_tokens` are those the backend said it did not compute again: a prefix it still
held from an earlier call (llama.cpp's `timings.cache_n`, OpenAI's `usage.prompt_tokens_details.cached_tokens`). It is
what makes best-of-N cheap where a backend keeps its prefix: N samples of one prompt bill N prompts and compute one.
A backend that does not say counts 0 there, so `evaluated_prompt_tokens` is then the billed count, never less.

`track_usage()` collects, as dspy's usage tracker does: every completion the LLM client returns inside the `with`
block — in this task and in every task it starts, however deep in the pipeline — is added to it. So pipeline steps
return their values, not (value, completions) pairs, and a report takes its cost from the block around its work.
Blocks nest: a completion counts in every block it is inside."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class _Completed(Protocol):
    """A completion as usage sees it (llm.base.Completion)."""

    @property
    def cached(self) -> bool: ...

    @property
    def usage(self) -> Usage: ...

    @property
    def seconds(self) -> float | None: ...


class Usage(BaseModel):
    """What LLM calls cost: calls sent, cache hits, and the tokens of all of them (module docstring)."""

    model_config = ConfigDict(extra="forbid")

    llm_calls: int = Field(0, ge=0, description="calls sent to the backend")
    cache_hits: int = Field(0, ge=0, description="calls answered from the cache or by an identical call in flight")
    prompt_tokens: int = Field(0, ge=0, description="prompt tokens of every call, cache hits included")
    completion_tokens: int = Field(0, ge=0, description="completion tokens of every call, cache hits included")
    cached_prompt_tokens: int = Field(0, ge=0, description="of the prompt tokens, those the backend reused from its "
                                      "prefix cache instead of computing them (0 where it does not say)")
    seconds: float = Field(0.0, ge=0, description="the backend's time on the calls sent (a cache hit takes none), "
                           "not the wait for a free slot")

    @classmethod
    def of(cls, completion: _Completed) -> Usage:
        """One completion's: a call sent, or a cache hit, and its tokens."""
        return cls(llm_calls=0 if completion.cached else 1, cache_hits=1 if completion.cached else 0,
                   prompt_tokens=completion.usage.prompt_tokens, completion_tokens=completion.usage.completion_tokens,
                   cached_prompt_tokens=completion.usage.cached_prompt_tokens,
                   seconds=0.0 if completion.cached else completion.seconds or 0.0)

    @classmethod
    def total(cls, usages: Iterable[Usage]) -> Usage:
        """The sum of `usages`."""
        result = cls()
        for usage in usages:
            result.add(usage)
        return result

    @property
    def calls(self) -> int:
        """Every call, sent or not."""
        return self.llm_calls + self.cache_hits

    @property
    def evaluated_prompt_tokens(self) -> int:
        """The prompt tokens the backend computed: billed ones less those it reused from its prefix cache."""
        return self.prompt_tokens - self.cached_prompt_tokens

    @property
    def backend_seconds(self) -> float | None:
        """The backend's time, or None where no call was sent (all came from the cache: nothing was measured)."""
        return round(self.seconds, 3) if self.llm_calls else None

    def add(self, other: Usage) -> None:
        """Add `other` to this usage, in place."""
        self.llm_calls += other.llm_calls
        self.cache_hits += other.cache_hits
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_prompt_tokens += other.cached_prompt_tokens
        self.seconds = round(self.seconds + other.seconds, 6)

    def __add__(self, other: Usage) -> Usage:
        return Usage.total([self, other])

    def summary(self) -> str:
        """One line for a person: calls, cache hits and the tokens of all of them (and of the prompt tokens, those the
        backend computed, where it reused some)."""
        computed = (f" ({self.evaluated_prompt_tokens:,} computed, the rest reused from the backend's prefix cache)"
                    if self.cached_prompt_tokens else "")
        return (f"LLM calls: {self.llm_calls} (cache hits: {self.cache_hits}) · tokens: {self.prompt_tokens:,} "
                f"prompt{computed} + {self.completion_tokens:,} completion")


_COLLECTORS: ContextVar[tuple[Usage, ...]] = ContextVar("hyperalign_usage_collectors", default=())


@contextmanager
def track_usage() -> Iterator[Usage]:
    """Collect the usage of every completion returned inside the block (and in the tasks it starts)."""
    usage = Usage()
    token = _COLLECTORS.set((*_COLLECTORS.get(), usage))
    try:
        yield usage
    finally:
        _COLLECTORS.reset(token)


def record(usage: Usage) -> None:
    """Add one call's usage to every collector open in this context (the LLM client calls this)."""
    for collector in _COLLECTORS.get():
        collector.add(usage)
