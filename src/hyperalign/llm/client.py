"""What the pipeline talks to: a backend plus the completion cache, usage accounting, bounded concurrency,
and validated structured output with repair turns (a setting: `max_repairs`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError

from ..errors import StructuredOutputError, first_error
from ..text import estimate_tokens
from ..usage import Usage, record
from .base import Completion, CompletionRequest, LLMBackend, Message, backend_identity
from .cache import CompletionCache
from .loop import on_llm_loop, run_sync

# The cache key's format (see cache.py for the policy); bump it whenever what goes into the key changes.
CACHE_KEY_POLICY = 2
M = TypeVar("M", bound=BaseModel)
# The turn after an invalid structured output (instructor's re-ask): the validation error, then the request again.
REPAIR_MESSAGE = ("That output is not valid: {problem}. Answer again with only the JSON object, following the schema "
                  "exactly, with short values.")


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
        self.stats = Usage()  # every call this client answered
        # The semaphore, the budget and the calls in flight, on the process's one LLM loop (loop.py), where every
        # call of this client runs, whichever thread or loop it came from.
        self._state: _LoopState | None = None

    @property
    def model(self) -> str:
        return self.backend.model

    async def aclose(self) -> None:
        """Release the backend's connections and the cache."""
        await on_llm_loop(self.backend.aclose())
        if self.cache:
            self.cache.close()

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
        usage = Usage.of(completion)
        self.stats.add(usage)  # on the LLM loop, one call at a time
        record(usage)
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
        if self.cache and not completion.bias_dropped:
            self.cache.put(key, self.backend.name, request, completion)
        return completion

    async def acomplete_structured(
        self, messages: list[Message], schema: type[M], *, step: str, max_tokens: int = 700
    ) -> M:
        """The validated object. An invalid output is shown its validation error and asked again (`max_repairs`
        times); every attempt counts in the usage collected around the call (usage.track_usage)."""
        request = CompletionRequest(
            messages=messages,
            max_tokens=max_tokens,
            json_schema=schema.model_json_schema(),
            # OpenAI accepts only [a-zA-Z0-9_-] here: "infer_hypotheses[style]" -> "infer_hypotheses-style"
            schema_name=re.sub(r"[^a-zA-Z0-9_-]+", "-", step).strip("-"),
        )
        messages_so_far = list(messages)
        for attempt in range(self.max_repairs + 1):
            completion = await self.acomplete(request.model_copy(update={"messages": messages_so_far}))
            try:
                return schema.model_validate_json(completion.text)
            except ValidationError as exc:
                problem = _describe(exc, completion)
            if attempt == self.max_repairs:
                raise StructuredOutputError(step, problem, completion.text, repairs=self.max_repairs)
            messages_so_far = [
                *messages_so_far,
                {"role": "assistant", "content": completion.text},
                {"role": "user", "content": REPAIR_MESSAGE.format(problem=problem)},
            ]
        raise AssertionError("unreachable")

    def complete(self, request: CompletionRequest) -> Completion:
        return run_sync(self.acomplete(request))

    def complete_structured(
        self, messages: list[Message], schema: type[M], *, step: str, max_tokens: int = 700
    ) -> M:
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
