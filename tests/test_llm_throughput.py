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
        return self.reply(request)


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
    each = estimated_tokens(request("x" * 400, max_tokens=100))  # the prompt's estimate + 100 completion
    assert each == 115 + 100
    # Room for one call and a bit: the second must wait until 10 tokens have drained at (2 x each - 10)/60 a second.
    client = LLMClient(backend, tokens_per_minute=2 * each - 10)

    async def run():
        await asyncio.gather(client.acomplete(request("x" * 400, 100)), client.acomplete(request("y" * 400, 100)))

    asyncio.run(run())
    first, second = sorted(backend.arrivals)
    assert second - first >= 1.0  # 10 tokens / 7 tokens per second ≈ 1.4 s
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


# --- one event loop for every caller: limits hold across sync calls and threads ----------------------------------


def _most_in_flight(arrivals: list[float], seconds: float) -> int:
    """The most requests the server held at once, each for `seconds` after it arrived."""
    return max(sum(start <= at < start + seconds for start in arrivals) for at in arrivals)


def test_concurrency_holds_across_threads_making_sync_calls():
    from concurrent.futures import ThreadPoolExecutor

    from hyperalign.llm.openai import OpenAIBackend
    from openai_test_server import OpenAITestServer, delayed

    pause = 0.3
    with OpenAITestServer(default=delayed(pause)) as server:
        client = LLMClient(OpenAIBackend(model="m", base_url=server.base_url), concurrency=2)
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda i: client.complete(request(f"thread {i}")), range(6)))
        arrivals = [r.at for r in server.requests]
    assert len(answers) == 6 and len(arrivals) == 6
    assert _most_in_flight(arrivals, pause) <= 2


def test_a_tokens_per_minute_budget_holds_across_sync_calls():
    backend = SlowFake(pause=0)
    # Room for one call and a bit (as above): the second sync call must wait for the bucket to drain, though it is a
    # separate call of the sync API (which used to start a fresh event loop, and with it a full budget, every time).
    client = LLMClient(backend, tokens_per_minute=2 * estimated_tokens(request("x" * 400, 100)) - 10)
    client.complete(request("x" * 400, 100))
    client.complete(request("y" * 400, 100))
    first, second = sorted(backend.arrivals)
    assert second - first >= 1.0


def test_the_library_s_sync_api_shares_one_budget_across_a_thread_pool():
    from concurrent.futures import ThreadPoolExecutor

    from hyperalign import HyperAlign

    backend = SlowFake(pause=0.2)
    ha = HyperAlign(LLMClient(backend, concurrency=1))
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(lambda i: ha.generate(None, f"Write note {i}.", "zero-shot").text, range(4)))
    assert len(texts) == 4
    assert _most_in_flight(backend.arrivals, 0.2) == 1
