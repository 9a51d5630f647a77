"""What the pipeline talks to: a backend plus the completion cache, usage accounting, bounded concurrency,
and validated structured output with repair turns (a setting: `max_repairs`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError

from ..errors import StructuredOutputError, first_error
from ..prompts import render
from ..text import estimate_tokens
from .base import Completion, CompletionRequest, LLMBackend, Message, backend_identity
from .cache import CompletionCache
from .loop import on_llm_loop, run_sync

# The cache key's format (see cache.py for the policy); bump it whenever what goes into the key changes.
CACHE_KEY_POLICY = 2
M = TypeVar("M", bound=BaseModel)


class RunStats(BaseModel):
    llm_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0

    def add(self, completion: Completion) -> None:
        if completion.cached:
            self.cache_hits += 1
            self.cached_prompt_tokens += completion.usage.prompt_tokens
            self.cached_completion_tokens += completion.usage.completion_tokens
        else:
            self.llm_calls += 1
            self.prompt_tokens += completion.usage.prompt_tokens
            self.completion_tokens += completion.usage.completion_tokens

    def since(self, before: RunStats) -> RunStats:
        return RunStats(**{k: v - getattr(before, k) for k, v in self.model_dump().items()})

    def summary(self) -> str:
        return (
            f"LLM calls: {self.llm_calls} (cache hits: {self.cache_hits}) · tokens: "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion"
            + (
                f" · served from cache: {self.cached_prompt_tokens:,} + {self.cached_completion_tokens:,}"
                if self.cache_hits
                else ""
            )
        )


# Request fields added after the key policy was set enter the key only when they are set, so every answer cached
# before them keeps its key (a request without steering is the same request it always was).
KEYED_WHEN_SET = ("logit_bias", "prefill")
# What a backend's identity says about how it maps a request's text biases onto tokens: in the key only of requests
# that carry biases (the answer to any other request does not depend on it).
KEYED_WHEN_BIASED = ("logit_bias_mapping",)


def unbiased_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """A backend's identity as far as requests without steering biases depend on it: what a run folder's generator
    identity is made of, so a changed bias mapping does not disown a run's unsteered work (its steered rows follow
    the code like any pipeline step's)."""
    return {k: v for k, v in identity.items() if k not in KEYED_WHEN_BIASED}


def cache_key(identity: dict[str, Any], request: CompletionRequest) -> str:
    unset = {name for name in KEYED_WHEN_SET if not getattr(request, name)}
    if not request.logit_bias:
        identity = unbiased_identity(identity)
    # ensure_ascii: a key can always be computed, whatever the text holds.
    payload = json.dumps({"policy": CACHE_KEY_POLICY, "backend": identity,
                          "request": request.model_dump(exclude=unset)},
                         sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def estimated_tokens(request: CompletionRequest) -> int:
    """What a request may cost, counted before it is sent: its prompt (estimated from its length) and the most it
    may write. An upper bound on the completion, so a budget on it is never exceeded."""
    return sum(estimate_tokens(m.get("content", "")) for m in request.messages) + request.max_tokens


class LLMClient:
    """`tokens_per_minute`: a budget on the tokens sent and asked for (estimated before each call, a leaky bucket
    from aiolimiter): calls wait for room instead of drawing 429s from a provider's per-minute limit.

    Identical requests in flight at the same time are sent once: the others wait for that answer (counted as cache
    hits), so two workers asking the same thing at once never pay twice — with or without a cache."""

    def __init__(self, backend: LLMBackend, cache: CompletionCache | None = None, concurrency: int = 4,
                 max_repairs: int = 1, tokens_per_minute: int | None = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_repairs < 0:
            raise ValueError("max_repairs must be at least 0")
        if tokens_per_minute is not None and tokens_per_minute < 1:
            raise ValueError("tokens_per_minute must be at least 1")
        self.backend = backend
        self.cache = cache
        self.concurrency = concurrency
        self.max_repairs = max_repairs
        self.tokens_per_minute = tokens_per_minute
        self.identity = backend_identity(backend)
        self.stats = RunStats()
        self._stats_lock = threading.Lock()
        # The semaphore, the budget and the calls in flight, on the process's one LLM loop (loop.py), where every
        # call of this client runs, whichever thread or loop it came from.
        self._state: _LoopState | None = None

    @property
    def model(self) -> str:
        return self.backend.model

    def _loop_state(self) -> _LoopState:
        """Made on the LLM loop's first call (again in a forked child, whose loop is new)."""
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            budget = AsyncLimiter(self.tokens_per_minute, 60) if self.tokens_per_minute else None
            self._state = _LoopState(loop, asyncio.Semaphore(self.concurrency), budget, {})
        return self._state

    async def acomplete(self, request: CompletionRequest) -> Completion:
        return await on_llm_loop(self._acomplete(request))

    async def _acomplete(self, request: CompletionRequest) -> Completion:
        key = cache_key(self.identity, request)
        completion = self.cache.get(key) if self.cache else None
        if completion is None:
            completion = await self._shared_call(self._loop_state(), key, request)
        with self._stats_lock:
            self.stats.add(completion)
        return completion

    async def _shared_call(self, state: _LoopState, key: str, request: CompletionRequest) -> Completion:
        """The first caller of a request makes the call itself (so cancelling it cancels the call, as always); an
        identical request arriving meanwhile waits for that answer. If the first caller is cancelled, a waiter that
        was not takes over."""
        while (shared := state.in_flight.get(key)) is not None:
            try:
                return (await asyncio.shield(shared)).model_copy(update={"cached": True, "seconds": None})
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this caller was cancelled
        shared = asyncio.get_running_loop().create_future()
        state.in_flight[key] = shared
        try:
            completion = await self._call(state, key, request)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                shared.cancel()
            else:
                shared.set_exception(exc)
                shared.exception()  # retrieved here: nobody may be waiting for it
            raise
        finally:
            state.in_flight.pop(key, None)
        shared.set_result(completion)
        return completion

    async def _call(self, state: _LoopState, key: str, request: CompletionRequest) -> Completion:
        async with state.semaphore:
            if state.budget is not None:
                await state.budget.acquire(min(estimated_tokens(request), state.budget.max_rate))
            started = time.perf_counter()
            completion = await self.backend.acomplete(request)
            if completion.seconds is None:
                completion = completion.model_copy(update={"seconds": round(time.perf_counter() - started, 3)})
        if self.cache:
            self.cache.put(key, self.backend.name, request, completion)
        return completion

    async def acomplete_structured(
        self, messages: list[Message], schema: type[M], *, step: str, max_tokens: int = 700
    ) -> tuple[M, list[Completion]]:
        """Returns the validated object and the completions it took (one per attempt: the first, then each repair)."""
        request = CompletionRequest(
            messages=messages,
            max_tokens=max_tokens,
            json_schema=schema.model_json_schema(),
            # OpenAI accepts only [a-zA-Z0-9_-] here: "infer_hypotheses[style]" -> "infer_hypotheses-style"
            schema_name=re.sub(r"[^a-zA-Z0-9_-]+", "-", step).strip("-"),
        )
        messages_so_far = list(messages)
        completions: list[Completion] = []
        for attempt in range(self.max_repairs + 1):
            completion = await self.acomplete(request.model_copy(update={"messages": messages_so_far}))
            completions.append(completion)
            try:
                return schema.model_validate_json(completion.text), completions
            except ValidationError as exc:
                problem = _describe(exc, completion)
            if attempt == self.max_repairs:
                raise StructuredOutputError(step, problem, completion.text, repairs=self.max_repairs,
                                            completions=completions)
            messages_so_far = [
                *messages_so_far,
                {"role": "assistant", "content": completion.text},
                {"role": "user", "content": render("repair", problem=problem)},
            ]
        raise AssertionError("unreachable")

    def complete(self, request: CompletionRequest) -> Completion:
        return run_sync(self.acomplete(request))

    def complete_structured(
        self, messages: list[Message], schema: type[M], *, step: str, max_tokens: int = 700
    ) -> tuple[M, list[Completion]]:
        return run_sync(self.acomplete_structured(messages, schema, step=step, max_tokens=max_tokens))


@dataclass
class _LoopState:
    loop: asyncio.AbstractEventLoop
    semaphore: asyncio.Semaphore
    budget: AsyncLimiter | None
    in_flight: dict[str, asyncio.Future[Completion]]  # the first caller's answer, awaited by identical requests


def _describe(exc: ValidationError, completion: Completion) -> str:
    if completion.finish_reason == "length":
        return "the JSON was cut off at the token limit; write shorter values"
    where, message = first_error(exc, "the output")
    return f"{where}: {message}"
