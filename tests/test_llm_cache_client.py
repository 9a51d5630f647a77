from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from pydantic import BaseModel

from conftest import MeteredBackend
from hyperalign import HyperAlign
from hyperalign.errors import InputError, StoreError, StructuredOutputError
from hyperalign.llm import (
    Capabilities,
    Completion,
    CompletionCache,
    CompletionRequest,
    LLMClient,
    Usage,
    backend_names,
    create_backend,
    default_cache_path,
    register_backend,
    registry,
    track_usage,
)
from hyperalign.llm import cache as cache_module
from hyperalign.llm.cache import VERSION_TABLE
from hyperalign.llm.client import cache_key
from hyperalign.llm.fake import FakeBackend
from hyperalign.llm.loop import run_sync


def request(text: str = "Fog again?", **params) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": text}], **params)


def test_a_calls_seconds_are_the_backends_own_and_a_cache_hit_has_none(tmp_cache):
    client = LLMClient(MeteredBackend(), cache=tmp_cache)
    first, again = client.complete(request()), client.complete(request())
    assert not first.cached and first.seconds == MeteredBackend.SECONDS
    assert again.cached and again.seconds is None  # nothing was computed for it in this run
    plain = LLMClient(FakeBackend()).complete(request())
    assert plain.seconds is not None and plain.seconds >= 0  # a backend that does not measure: the client does
    assert Usage.total(Usage.of(c) for c in [first, again, first]).backend_seconds == 2 * MeteredBackend.SECONDS
    assert Usage.of(again).backend_seconds is None  # all from the cache: nothing was measured


class Reading(BaseModel):
    station: str
    turns: int


# --- CompletionCache -------------------------------------------------------------------------------------------


def test_default_cache_path_is_isolated_in_tests(isolated_environment):
    assert default_cache_path() == isolated_environment / "xdg-cache" / "hyperalign" / "llm-cache.sqlite3"


MIGRATIONS = sorted(p.stem for p in (Path(cache_module.__file__).parent / "cache_migrations" / "versions").glob("0*.py"))


def test_migrations_applied_and_recorded(tmp_cache):
    assert len(MIGRATIONS) >= 3 and tmp_cache.applied_migrations() == MIGRATIONS  # every revision, oldest first
    assert tmp_cache.count() == 0


def test_reopen_does_not_reapply_migrations(tmp_path):
    path = tmp_path / "c.sqlite3"
    CompletionCache(path).close()
    with sqlite3.connect(path) as db:
        before = db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    assert before == [(MIGRATIONS[-1],)]
    reopened = CompletionCache(path)
    try:
        assert reopened.applied_migrations() == MIGRATIONS
    finally:
        reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == before
        indexes = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")]
    assert "completions_created_at" in indexes


def test_a_cache_from_before_alembic_is_stamped_then_upgraded_and_keeps_its_answers(tmp_path):
    """Caches written by hyperalign before its migrations moved to alembic recorded them in `_migrations`."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        db.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, backend TEXT NOT NULL, model TEXT NOT NULL, "
                   "request TEXT NOT NULL, response TEXT NOT NULL, finish_reason TEXT NOT NULL, "
                   "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created_at TEXT NOT NULL)")
        db.execute("CREATE INDEX completions_created_at ON completions (created_at)")
        db.executemany("INSERT INTO _migrations VALUES (?, 'then')",
                       [("m001_completions",), ("m002_completions_created_at_index",)])
        db.execute("INSERT INTO completions VALUES ('k', 'fake', 'm', '{}', 'kept', 'stop', 3, 2, 'then')")
    cache = CompletionCache(path)
    try:
        assert cache.applied_migrations() == MIGRATIONS
        kept = cache.get("k")
        assert kept is not None and kept.text == "kept" and kept.cached
        assert kept.usage == Usage(prompt_tokens=3, completion_tokens=2)  # from before 0005: nothing said reused
    finally:
        cache.close()
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        columns = {r[1] for r in db.execute("PRAGMA table_info(completions)")}
    assert "_migrations" not in tables and {"logprobs", "cached_prompt_tokens"} <= columns


def test_a_cache_from_a_newer_hyperalign_is_refused_by_name(tmp_path):
    path = tmp_path / "newer.sqlite3"
    CompletionCache(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999_from_the_future'")
    with pytest.raises(StoreError, match="9999_from_the_future.*newer"):
        CompletionCache(path)


def test_put_get_round_trip(tmp_cache):
    req = request()
    key = cache_key({"backend": "fake", "model": "m1"}, req)
    assert tmp_cache.get(key) is None
    stored = Completion(text="Gears first.", finish_reason="length", usage=Usage(prompt_tokens=7, completion_tokens=2), model="m1")
    tmp_cache.put(key, "fake", req, stored)
    got = tmp_cache.get(key)
    assert got == stored.model_copy(update={"cached": True})
    assert got.cached is True and stored.cached is False
    assert tmp_cache.count() == 1


def test_cache_key_depends_on_backend_model_and_params():
    fake = {"backend": "fake", "model": "m"}
    base = request()
    assert cache_key(fake, base) == cache_key(dict(fake), request())
    assert cache_key(fake, base) != cache_key({**fake, "model": "m2"}, base)
    assert cache_key(fake, base) != cache_key({**fake, "backend": "openai"}, base)
    assert cache_key(fake, base) != cache_key(fake, request(temperature=0.7))
    assert cache_key(fake, base) != cache_key(fake, request(max_tokens=10))


# --- LLMClient: cache and stats --------------------------------------------------------------------------------


def test_second_identical_request_is_served_from_cache(tmp_cache):
    backend = FakeBackend(["first answer", "second answer"])
    client = LLMClient(backend, cache=tmp_cache)
    one = client.complete(request())
    two = client.complete(request())
    assert len(backend.requests) == 1
    assert (one.text, one.cached) == ("first answer", False)
    assert (two.text, two.cached) == ("first answer", True)
    assert client.stats.llm_calls == 1 and client.stats.cache_hits == 1
    # Tokens count every call, the cache hit's included: the size of the work, paid for this time or not.
    assert client.stats.prompt_tokens == 2 * one.usage.prompt_tokens > 0
    assert client.stats.completion_tokens == 2 * one.usage.completion_tokens > 0


def test_cache_survives_a_new_client(tmp_cache):
    LLMClient(FakeBackend(["stored"]), cache=tmp_cache).complete(request())
    backend = FakeBackend(["fresh"])
    assert LLMClient(backend, cache=tmp_cache).complete(request()).text == "stored"
    assert backend.requests == []


def test_different_params_make_a_different_key(tmp_cache):
    backend = FakeBackend(["a", "b", "c"])
    client = LLMClient(backend, cache=tmp_cache)
    texts = [client.complete(r).text for r in (request(), request(temperature=0.5), request(seed=7))]
    assert texts == ["a", "b", "c"]
    assert len(backend.requests) == 3 and client.stats.cache_hits == 0 and tmp_cache.count() == 3


def test_without_cache_every_request_calls_backend():
    backend = FakeBackend(["a", "b"])
    client = LLMClient(backend, cache=None)
    assert [client.complete(request()).text for _ in range(2)] == ["a", "b"]
    assert client.stats.llm_calls == 2


def test_stats_summary_text():
    stats = Usage(llm_calls=3, prompt_tokens=12345, completion_tokens=678)
    assert stats.summary() == "LLM calls: 3 (cache hits: 0) · tokens: 12,345 prompt + 678 completion"
    hit = Usage.of(Completion(text="x", cached=True, usage=Usage(prompt_tokens=1500, completion_tokens=20)))
    assert hit == Usage(cache_hits=1, prompt_tokens=1500, completion_tokens=20)
    stats.add(hit)
    assert (stats.llm_calls, stats.cache_hits, stats.calls) == (3, 1, 4)
    assert stats.summary() == "LLM calls: 3 (cache hits: 1) · tokens: 13,845 prompt + 698 completion"
    sent = Usage.of(Completion(text="y", usage=Usage(prompt_tokens=5, completion_tokens=1)))
    assert sent == Usage(llm_calls=1, prompt_tokens=5, completion_tokens=1)
    assert stats + sent == Usage(llm_calls=4, cache_hits=1, prompt_tokens=13850, completion_tokens=699)
    assert stats.llm_calls == 3  # `+` leaves both sides alone
    assert Usage.total([sent, sent, hit]).calls == 3


def test_the_prompt_a_backend_reused_is_counted_apart_and_replayed_from_the_cache(tmp_cache):
    """A backend with a prefix cache (the fake keeps its last prompt, as llama.cpp's one slot does) reports the
    prompt tokens it reused: billed, not computed. A cache hit replays the call as it was, so a resumed run reports
    what the first one computed."""
    backend = FakeBackend(["a", "b", "c"], capabilities=Capabilities(prompt_prefix_cache=True))
    client = LLMClient(backend, cache=tmp_cache)
    first, second = client.complete(request(seed=1)), client.complete(request(seed=2))  # one prompt, two samples
    words = first.usage.prompt_tokens
    assert (first.usage.cached_prompt_tokens, second.usage.cached_prompt_tokens) == (0, words)
    assert client.stats.evaluated_prompt_tokens == words and client.stats.prompt_tokens == 2 * words
    assert client.stats.summary() == (f"LLM calls: 2 (cache hits: 0) · tokens: {2 * words:,} prompt ({words:,} "
                                      "computed, the rest reused from the backend's prefix cache) + 2 completion")
    replayed = client.complete(request(seed=2))
    assert replayed.cached and replayed.usage.cached_prompt_tokens == words
    without = FakeBackend(["a", "b"])  # a backend that says nothing of it: all computed
    assert LLMClient(without).complete(request(seed=1)).usage.cached_prompt_tokens == 0
    assert LLMClient(without).complete(request(seed=2)).usage.cached_prompt_tokens == 0


def test_track_usage_collects_every_call_inside_it_and_nests(tmp_cache):
    client = LLMClient(FakeBackend(["a", "b"]), cache=tmp_cache)
    client.complete(request(seed=1))  # before the block: not counted in it
    with track_usage() as outer:
        client.complete(request(seed=2))
        with track_usage() as inner:
            client.complete(request(seed=2))  # a cache hit
    client.complete(request(seed=3))  # after the block
    assert (outer.llm_calls, outer.cache_hits) == (1, 1) and outer.prompt_tokens > 0
    assert (inner.llm_calls, inner.cache_hits) == (0, 1) and inner.prompt_tokens == outer.prompt_tokens // 2
    assert client.stats.calls == 4


def test_track_usage_collects_the_calls_of_tasks_started_inside_it():
    client = LLMClient(FakeBackend(lambda r: "ok"), cache=None)

    async def many() -> Usage:
        with track_usage() as usage:
            await asyncio.gather(*(client.acomplete(request(seed=i)) for i in range(5)))
        return usage

    assert run_sync(many()).llm_calls == 5


# --- structured output -----------------------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "Read the lamp counter."}]


def test_structured_valid_first_reply():
    backend = FakeBackend(['{"station": "North Light", "turns": 412}'])
    with track_usage() as usage:
        value = LLMClient(backend).complete_structured(MESSAGES, Reading, step="read")
    assert value == Reading(station="North Light", turns=412)
    assert usage.calls == 1 and len(backend.requests) == 1
    sent = backend.requests[0]
    assert sent.schema_name == "read" and sent.json_schema == Reading.model_json_schema()


def test_structured_invalid_then_valid_is_repaired():
    backend = FakeBackend(['{"station": "North Light", "turns": "many"}', '{"station": "North Light", "turns": 9}'])
    with track_usage() as usage:
        value = LLMClient(backend).complete_structured(MESSAGES, Reading, step="read")
    assert value.turns == 9 and usage.calls == 2
    repair = backend.requests[1].messages
    assert repair[:-2] == MESSAGES
    assert repair[-2] == {"role": "assistant", "content": '{"station": "North Light", "turns": "many"}'}
    assert repair[-1]["role"] == "user"
    assert repair[-1]["content"].startswith("That output is not valid: turns:")
    assert "integer" in repair[-1]["content"]


def test_structured_non_json_reply_is_repaired():
    backend = FakeBackend(["Sure! Here it is.", '{"station": "S", "turns": 1}'])
    with track_usage() as usage:
        value = LLMClient(backend).complete_structured(MESSAGES, Reading, step="read")
    assert value.station == "S" and usage.calls == 2
    assert "Invalid JSON" in backend.requests[1].messages[-1]["content"]


def test_structured_invalid_twice_raises_naming_the_step():
    backend = FakeBackend(["nope", '{"station": "S"}'])
    with track_usage() as usage, pytest.raises(StructuredOutputError) as info:
        LLMClient(backend).complete_structured(MESSAGES, Reading, step="infer_hypotheses[personality]")
    assert usage.llm_calls == 2  # the failed attempts still count in what the step cost
    error = info.value
    assert error.step == "infer_hypotheses[personality]"
    assert "step 'infer_hypotheses[personality]'" in str(error)
    assert "turns: Field required" in str(error)
    assert error.output == '{"station": "S"}'
    assert len(backend.requests) == 2


class TruncatingBackend(FakeBackend):
    def reply(self, request: CompletionRequest) -> Completion:
        return super().reply(request).model_copy(update={"finish_reason": "length"})


def test_structured_length_finish_reason_message():
    backend = TruncatingBackend(['{"station": "North', '{"station": "No'])
    with pytest.raises(StructuredOutputError, match="cut off at the token limit") as info:
        LLMClient(backend).complete_structured(MESSAGES, Reading, step="read")
    assert "cut off at the token limit" in backend.requests[1].messages[-1]["content"]
    assert "Output began: '{\"station\": \"No'" in str(info.value)


# --- concurrency -----------------------------------------------------------------------------------------------


class InFlightBackend(FakeBackend):
    """Async backend that records how many calls are in flight at once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_flight = 0
        self.max_in_flight = 0

    async def acomplete(self, request: CompletionRequest) -> Completion:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return self.reply(request)
        finally:
            self.in_flight -= 1


async def test_concurrency_is_bounded():
    backend = InFlightBackend()
    client = LLMClient(backend, concurrency=2)
    results = await asyncio.gather(*(client.acomplete(request(f"task {i}")) for i in range(7)))
    assert len(results) == 7 and len(backend.requests) == 7
    assert backend.max_in_flight == 2
    assert backend.in_flight == 0


@pytest.mark.parametrize("concurrency", [0, -3])
def test_concurrency_below_one_is_refused(concurrency):
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        LLMClient(FakeBackend(), concurrency=concurrency)


# --- registry --------------------------------------------------------------------------------------------------


def test_create_fake_backend_ignores_unused_options():
    backend = create_backend("fake", model="tiny", base_url=None, api_key="unused", context_tokens=2048)
    assert isinstance(backend, FakeBackend)
    assert (backend.name, backend.model, backend.context_tokens) == ("fake", "tiny", 2048)


def test_unknown_backend_lists_available_names():
    with pytest.raises(InputError) as info:
        create_backend("does-not-exist")
    message = str(info.value)
    assert message.startswith("unknown backend 'does-not-exist'; available: ")
    for name in ("embedded", "fake", "openai"):
        assert name in message


def test_register_backend_adds_a_custom_one(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTERED", {})

    class EchoBackend(FakeBackend):
        name = "echo"

    register_backend("echo", lambda **options: EchoBackend(["echo!"], **options))
    assert "echo" in backend_names()
    backend = create_backend("echo", model="echo-1")
    assert backend.name == "echo" and backend.model == "echo-1"
    assert LLMClient(backend).complete(request()).text == "echo!"


def test_from_config_with_fake_backend_uses_isolated_default_cache(isolated_environment):
    ha = HyperAlign.from_config("fake", model="tiny", cache=True)
    try:
        assert ha.client.backend.model == "tiny"
        assert ha.client.cache.path == default_cache_path()
        assert isolated_environment in ha.client.cache.path.parents
    finally:
        ha.client.cache.close()
    assert HyperAlign.from_config("fake", cache=False).client.cache is None


# --- run_sync --------------------------------------------------------------------------------------------------


async def test_run_sync_works_inside_a_running_event_loop():
    asyncio.get_running_loop()  # we are inside one
    backend = FakeBackend(["from a thread"])
    assert LLMClient(backend).complete(request()).text == "from a thread"

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_sync(answer()) == 42


async def test_run_sync_reraises_inside_a_running_event_loop():
    async def fail() -> None:
        raise InputError("bad input")

    with pytest.raises(InputError, match="bad input"):
        run_sync(fail())


def test_run_sync_without_a_loop():
    async def answer() -> str:
        return "ok"

    assert run_sync(answer()) == "ok"


def test_a_keyboard_interrupt_inside_the_work_reaches_its_caller_and_the_loop_serves_on():
    async def killed() -> None:
        raise KeyboardInterrupt("killed")

    async def fine() -> str:
        return "still serving"

    with pytest.raises(KeyboardInterrupt, match="killed"):
        run_sync(killed())
    assert run_sync(fine()) == "still serving"


def test_the_caller_s_context_travels_to_the_llm_loop():
    import contextvars

    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    marker.set("the caller's")

    async def read() -> str:
        return marker.get()

    assert run_sync(read()) == "the caller's"


def test_a_blocking_call_on_the_llm_loop_itself_is_refused_not_deadlocked():
    ha = HyperAlign(LLMClient(FakeBackend()))
    seen: list[str] = []

    def on_done(index, generation):
        try:
            ha.generate(None, "again", "zero-shot")
        except RuntimeError as exc:
            seen.append(str(exc))

    ha.generate_many(None, ["one"], "zero-shot", on_done=on_done)
    assert seen and "use the async API" in seen[0]


async def test_cancelling_an_async_caller_cancels_the_work_on_the_llm_loop():
    started, cancelled = asyncio.Event(), []

    class Hanging(FakeBackend):
        async def acomplete(self, request):
            loop.call_soon_threadsafe(started.set)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return self.reply(request)

    loop = asyncio.get_running_loop()
    call = asyncio.ensure_future(LLMClient(Hanging()).acomplete(request()))
    await asyncio.wait_for(started.wait(), 5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    for _ in range(100):  # the cancellation crosses to the other thread's loop
        if cancelled:
            break
        await asyncio.sleep(0.02)
    assert cancelled == [True]


# --- the cache-key policy and a cache that fails --------------------------------------------------------------------


def test_the_key_covers_the_backend_identity_and_never_the_api_key(tmp_path):
    from hyperalign.llm.base import backend_identity
    from hyperalign.llm.embedded import EmbeddedBackend
    from hyperalign.llm.openai import OpenAIBackend

    one = OpenAIBackend(model="m", base_url="http://a.example/v1", api_key="sk-one")
    two = OpenAIBackend(model="m", base_url="http://b.example/v1", api_key="sk-one")
    same = OpenAIBackend(model="m", base_url="http://user:pw@a.example/v1", api_key="sk-two")
    assert backend_identity(one) != backend_identity(two)
    assert backend_identity(one)["endpoint"] == "http://a.example/v1"
    assert backend_identity(same)["endpoint"] == "http://***@a.example/v1"
    assert "sk-" not in json.dumps(backend_identity(same)) and "pw" not in json.dumps(backend_identity(same))

    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(3 * 2**20))
    copy = tmp_path / "elsewhere" / "renamed.gguf"
    copy.parent.mkdir()
    copy.write_bytes(model.read_bytes())
    a, b = EmbeddedBackend(model=str(model)), EmbeddedBackend(model=str(copy))
    assert backend_identity(a)["model_file"] == backend_identity(b)["model_file"]  # content, not name or place
    model.write_bytes(b"GGUF" + bytes(3 * 2**20 - 1) + b"\x01")  # same size and name, other weights
    assert backend_identity(EmbeddedBackend(model=str(model)))["model_file"] != backend_identity(b)["model_file"]
    assert backend_identity(EmbeddedBackend(model=str(copy), repeat_penalty=1.3)) != backend_identity(b)
    assert backend_identity(EmbeddedBackend(model=str(copy), context_tokens=4096)) != backend_identity(b)


def test_a_key_can_be_computed_for_any_text():
    assert len(cache_key({"backend": "fake"}, request("\ud800 odd"))) == 64


@pytest.mark.parametrize("make", [
    lambda path: path.write_text("not a database " * 500),
    lambda path: path.mkdir(),
    lambda path: sqlite3.connect(path).execute("CREATE TABLE completions (x INTEGER)"),
], ids=["text file", "directory", "another program's database"])
def test_an_unusable_cache_is_refused_before_any_call(tmp_path, make):
    from hyperalign.errors import StoreError

    path = tmp_path / "cache.sqlite3"
    make(path)
    with pytest.raises(StoreError, match=r"cannot use the completion cache .*cache.sqlite3: .*use another cache file or none"):
        CompletionCache(path)


def test_a_completion_is_returned_even_when_the_cache_cannot_store_it(tmp_cache, caplog):
    with sqlite3.connect(tmp_cache.path) as db:  # every insert now fails, as on a full disk
        db.execute("CREATE TRIGGER full BEFORE INSERT ON completions BEGIN SELECT RAISE(FAIL, 'disk is full'); END")
    backend = FakeBackend(["the answer", "the answer again"])
    client = LLMClient(backend, cache=tmp_cache)
    with caplog.at_level("WARNING", logger="hyperalign"):
        first = client.complete(request())
        second = client.complete(request())
    assert (first.text, second.text) == ("the answer", "the answer again") and len(backend.requests) == 2
    warnings = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warnings) == 1 and "disk is full" in warnings[0]  # said once, not per call


def test_a_cached_answer_keeps_its_log_probabilities(tmp_cache):
    backend = FakeBackend(probabilities=lambda r: {"A": 0.7, "B": 0.3})
    first = LLMClient(backend, cache=tmp_cache).complete(request(top_logprobs=5))
    again = LLMClient(FakeBackend(), cache=tmp_cache).complete(request(top_logprobs=5))
    assert again.cached and again.logprobs == first.logprobs and again.logprobs[0].top["A"] < 0


def test_an_answer_stored_without_the_log_probabilities_it_was_asked_for_is_asked_again(tmp_cache):
    asked = request(top_logprobs=5)
    key = cache_key(LLMClient(FakeBackend(), cache=tmp_cache).identity, asked)
    tmp_cache.put(key, "fake", asked, Completion(text="A"))  # as rows written before m003 are
    assert tmp_cache.get(key) is None
    plain = request()
    plain_key = cache_key(LLMClient(FakeBackend(), cache=tmp_cache).identity, plain)
    tmp_cache.put(plain_key, "fake", plain, Completion(text="A"))
    assert tmp_cache.get(plain_key).text == "A"  # nothing was asked for: nothing is missing
