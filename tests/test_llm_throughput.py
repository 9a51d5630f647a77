"""The client under many concurrent calls: identical requests in flight are sent once, and a tokens-per-minute budget
makes calls wait for room (measured by when the backend saw each call — a lower bound, never flaky on a slow
machine)."""

from __future__ import annotations

import asyncio
import time

import pytest

from hyperalign.llm import CompletionRequest, LLMClient
from hyperalign.llm.base import Completion
from hyperalign.llm.client import estimated_tokens
from hyperalign.llm.fake import FakeBackend


class SlowFake(FakeBackend):
    """The fake backend, answering after a pause (so calls overlap), noting when each call arrived."""

    def __init__(self, pause: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        self.pause, self.arrivals = pause, []

    async def acomplete(self, request: CompletionRequest) -> Completion:
        self.arrivals.append(time.monotonic())
        await asyncio.sleep(self.pause)
        return self.complete(request)


def request(text: str, max_tokens: int = 10) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": text}], max_tokens=max_tokens)


def test_identical_requests_in_flight_are_sent_once():
    backend = SlowFake()
    client = LLMClient(backend, concurrency=8)

    async def run():
        return await asyncio.gather(*(client.acomplete(request("same")) for _ in range(5)),
                                    client.acomplete(request("other")))

    results = asyncio.run(run())
    assert len(backend.requests) == 2  # "same" once, "other" once
    assert len({r.text for r in results[:5]}) == 1
    assert client.stats.llm_calls == 2 and client.stats.cache_hits == 4
    assert [r.cached for r in results].count(False) == 2


def test_a_failure_reaches_every_caller_that_waited_for_it():
    class Failing(SlowFake):
        async def acomplete(self, request):
            await super().acomplete(request)
            raise ConnectionError("endpoint gone")

    backend = Failing()
    client = LLMClient(backend)

    async def run():
        return await asyncio.gather(*(client.acomplete(request("same")) for _ in range(3)), return_exceptions=True)

    outcomes = asyncio.run(run())
    assert len(backend.requests) == 1 and all(isinstance(o, ConnectionError) for o in outcomes)


def test_a_tokens_per_minute_budget_makes_calls_wait_for_room():
    backend = SlowFake(pause=0)
    each = estimated_tokens(request("x" * 400, max_tokens=100))  # 100 prompt + 100 completion
    assert each == 200
    # Room for one call and a bit: the second must wait until (2 x 200 - 390) tokens have drained at 390/60 a second.
    client = LLMClient(backend, tokens_per_minute=390)

    async def run():
        await asyncio.gather(client.acomplete(request("x" * 400, 100)), client.acomplete(request("y" * 400, 100)))

    asyncio.run(run())
    first, second = sorted(backend.arrivals)
    assert second - first >= 1.0  # 10 tokens / 6.5 tokens per second ≈ 1.5 s
    with pytest.raises(ValueError, match="at least 1"):
        LLMClient(backend, tokens_per_minute=0)


def test_when_the_first_caller_is_cancelled_a_waiting_caller_takes_over():
    backend = SlowFake(pause=0.2)
    client = LLMClient(backend)

    async def run():
        first = asyncio.ensure_future(client.acomplete(request("same")))
        await asyncio.sleep(0.05)  # the first call is in flight
        second = asyncio.ensure_future(client.acomplete(request("same")))
        await asyncio.sleep(0.01)
        first.cancel()
        answer = await second
        return first, answer

    first, answer = asyncio.run(run())
    assert first.cancelled() and answer.text and not answer.cached
    assert len(backend.arrivals) == 2  # the cancelled call was abandoned; the waiter made its own
