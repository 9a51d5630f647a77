"""The openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1 (tests/openai_test_server.py):
the payload it sends, how answers map into `Completion`, how every failure becomes one of hyperalign's errors
(naming the endpoint, never its credentials), the SDK's retries, and the completion cache's key policy."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from hyperalign import HyperAlign
from hyperalign.errors import BackendUnavailableError, ContextOverflowError, HyperAlignError, LLMError
from hyperalign.llm import CompletionCache, CompletionRequest, LLMClient, Usage, track_usage
from hyperalign.llm.base import backend_identity
from hyperalign.llm.client import cache_key
from hyperalign.llm.openai import OpenAIBackend
from openai_test_server import OpenAITestServer, completion, delayed, error, no_choices, raw

MESSAGES = [{"role": "system", "content": "You keep a lighthouse."}, {"role": "user", "content": "Fog again?"}]
SCHEMA = {"type": "object", "properties": {"turns": {"type": "integer"}}, "required": ["turns"]}
CONTEXT_MESSAGE = ("This model's maximum context length is 4096 tokens. However, your messages resulted in "
                   "5120 tokens. Please reduce the length of the messages.")


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as running:
        yield running


def request(**params) -> CompletionRequest:
    return CompletionRequest(messages=MESSAGES, **params)


def backend_for(server: OpenAITestServer, max_retries: int = 0, **options) -> OpenAIBackend:
    return OpenAIBackend(model="lamp-7b", base_url=server.base_url, max_retries=max_retries, **options)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_credentials(url: str) -> str:
    return url.replace("http://", "http://keeper:s3cret@", 1)


class Reading(BaseModel):
    turns: int


# --- the request -----------------------------------------------------------------------------------------------


def test_payload_carries_model_messages_and_sampling(server):
    backend_for(server).complete(request(max_tokens=77, temperature=0.3, seed=7))
    [sent] = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "lamp-7b"
    assert sent.body["messages"] == MESSAGES
    assert sent.body["max_tokens"] == 77
    assert sent.body["temperature"] == 0.3
    assert sent.body["seed"] == 7
    assert "response_format" not in sent.body


def test_default_seed_zero_is_sent(server):
    backend_for(server).complete(request())
    assert server.requests[0].body["seed"] == 0


def test_no_seed_key_without_a_seed(server):
    backend_for(server).complete(request(seed=None))
    assert "seed" not in server.requests[0].body
    assert server.requests[0].body["model"] == "lamp-7b"


def test_json_schema_becomes_a_non_strict_response_format(server):
    backend_for(server).complete(request(json_schema=SCHEMA, schema_name="reading"))
    assert server.requests[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reading", "schema": SCHEMA, "strict": False},
    }


def test_structured_completion_sends_a_sanitized_schema_name_and_parses_the_answer(server):
    server.script(completion('{"turns": 412}'))
    client = LLMClient(backend_for(server))
    with track_usage() as usage:
        reading = client.complete_structured(MESSAGES, Reading, step="infer_hypotheses[style]")
    assert reading == Reading(turns=412)
    assert usage.llm_calls == 1 and len(server.requests) == 1
    response_format = server.requests[0].body["response_format"]
    assert response_format["json_schema"]["name"] == "infer_hypotheses-style"
    assert response_format["json_schema"]["schema"] == Reading.model_json_schema()


def test_authorization_carries_the_given_api_key(server):
    backend_for(server, api_key="sk-lighthouse-123").complete(request())
    assert server.requests[0].headers["authorization"] == "Bearer sk-lighthouse-123"


def test_placeholder_key_when_only_a_base_url_is_given(server):
    OpenAIBackend(model="lamp-7b", base_url=server.base_url, max_retries=0).complete(request())
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_key_from_environment_when_none_is_given(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    backend_for(server).complete(request())
    assert server.requests[0].headers["authorization"] == "Bearer sk-from-env"


def test_from_config_builds_an_openai_backend_that_talks_to_the_server(server):
    hyper = HyperAlign.from_config(backend="openai", model="lamp-7b", base_url=server.base_url, api_key="sk-cfg",
                                   cache=False, max_retries=0)
    assert isinstance(hyper.client.backend, OpenAIBackend)
    assert hyper.client.cache is None
    got = hyper.client.complete(request())
    assert got.text == "Gears first, opinions later."
    assert server.requests[0].headers["authorization"] == "Bearer sk-cfg"
    assert server.requests[0].body["model"] == "lamp-7b"
    assert hyper.stats.llm_calls == 1


# --- the answer ------------------------------------------------------------------------------------------------


def test_completion_maps_text_finish_reason_usage_and_model(server):
    server.script(completion("Storm from the west.", finish_reason="length", prompt_tokens=42, completion_tokens=9,
                             model="lamp-7b-q4"))
    got = backend_for(server).complete(request())
    assert got.text == "Storm from the west."
    assert got.finish_reason == "length"
    assert got.usage == Usage(prompt_tokens=42, completion_tokens=9)  # only the tokens: the client counts the calls
    assert got.model == "lamp-7b-q4"
    assert got.cached is False


@pytest.mark.parametrize(("cached_tokens", "recorded"), [(30, 30), (0, 0), (None, 0), (99, 42)])
def test_the_prompt_the_server_reused_is_recorded_apart(server, cached_tokens, recorded):
    """`usage.prompt_tokens_details.cached_tokens` (OpenAI's prompt caching, llama.cpp's and vLLM's prefix cache):
    billed, not computed. A server that does not say reuses nothing; one that says more than the prompt is capped."""
    server.script(completion(prompt_tokens=42, completion_tokens=9, cached_tokens=cached_tokens))
    got = backend_for(server).complete(request())
    assert got.usage == Usage(prompt_tokens=42, completion_tokens=9, cached_prompt_tokens=recorded)
    assert got.usage.evaluated_prompt_tokens == 42 - recorded


def test_null_content_gives_empty_text(server):
    server.script(completion(None))
    assert backend_for(server).complete(request()).text == ""


def test_lone_surrogate_escape_becomes_replacement_character(server):
    server.script(completion("fog\ud800lamp"))
    assert b"\\ud800" in completion("fog\ud800lamp").body  # it travels as the JSON escape
    got = backend_for(server).complete(request())
    assert got.text == "fog\ufffdlamp"
    got.text.encode("utf-8")  # encodable: it can be cached, logged and written


# --- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected", "pattern"),
    [
        (error(401, "Incorrect API key provided"), BackendUnavailableError, "refused the API key"),
        (error(403, "Project lacks access"), BackendUnavailableError, "refused the API key"),
        (error(404, "The model 'lamp-7b' does not exist"), BackendUnavailableError, "does not serve model 'lamp-7b'"),
        (error(400, CONTEXT_MESSAGE, code="context_length_exceeded"), ContextOverflowError, "too long for lamp-7b"),
        (error(400, "temperature must be at most 2"), LLMError, "HTTP 400: .*temperature must be at most 2"),
        (error(500, "The server had an error"), LLMError, "HTTP 500"),
        (error(429, "Rate limit reached", headers={"Retry-After": "0"}), LLMError, "rate-limiting"),
        (no_choices(), LLMError, "no choices"),
    ],
    ids=["401", "403", "404", "400-context", "400-other", "500", "429", "no-choices"],
)
def test_errors_are_mapped_and_name_the_endpoint(server, reply, expected, pattern):
    server.script(reply)
    backend = backend_for(server)
    with pytest.raises(expected, match=pattern) as caught:
        backend.complete(request())
    assert server.base_url in str(caught.value)
    assert len(server.requests) == 1  # max_retries=0: no retry


def test_other_400_is_not_a_context_overflow(server):
    server.script(error(400, "temperature must be at most 2"))
    with pytest.raises(LLMError, match="HTTP 400") as caught:
        backend_for(server).complete(request())
    assert not isinstance(caught.value, ContextOverflowError)


def test_base_url_without_v1_is_reported_as_not_an_openai_endpoint(server):
    backend = OpenAIBackend(model="lamp-7b", base_url=server.base_url.removesuffix("/v1"), max_retries=0)
    with pytest.raises(BackendUnavailableError, match="not an OpenAI-compatible /v1 endpoint"):
        backend.complete(request())
    assert server.requests[0].path == "/chat/completions"


def test_non_json_body_with_a_text_content_type_is_an_llm_error(server):
    server.script(raw(b"<html>502 Bad Gateway</html>", content_type="text/html"))
    with pytest.raises(LLMError, match=re.escape(server.base_url)):
        backend_for(server).complete(request())


# A 200 whose body is not the completion it should be is an error naming the endpoint, never a raw exception (which
# the CLI would report as a bug).
MALFORMED_200 = [
    pytest.param(b"not json at all", id="not-json"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"choices": [{"index": 0}]}', id="choice-without-message"),
    pytest.param(b'{"choices": [{"message": {"content": 5}}]}', id="content-not-a-string"),
    pytest.param(b'{"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "many"}}',
                 id="usage-not-a-number"),
]


@pytest.mark.parametrize("body", MALFORMED_200)
def test_malformed_200_body_is_a_hyperalign_error(server, body):
    server.script(raw(body))
    with pytest.raises(HyperAlignError, match=re.escape(server.base_url)):
        backend_for(server).complete(request())


def test_connection_refused_is_backend_unavailable():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    backend = OpenAIBackend(model="lamp-7b", base_url=url, max_retries=0)
    with pytest.raises(BackendUnavailableError, match=f"cannot reach the LLM endpoint {re.escape(url)}"):
        backend.complete(request())


def test_slow_server_is_a_timeout(server):
    server.script(delayed(1.5))
    backend = backend_for(server, timeout=0.5)
    with pytest.raises(BackendUnavailableError, match="did not answer in time") as caught:
        backend.complete(request())
    assert server.base_url in str(caught.value)
    assert len(server.requests) == 1


# --- retries (the SDK's) ---------------------------------------------------------------------------------------


def test_sdk_retries_500_and_429_then_returns_the_success(server):
    server.script(error(500, "boom"), error(429, "slow down", headers={"Retry-After": "0"}),
                  completion("Third time, the lamp lit."))
    got = backend_for(server, max_retries=2).complete(request())
    assert got.text == "Third time, the lamp lit."
    assert len(server.requests) == 3
    assert all(sent.body == server.requests[0].body for sent in server.requests)


def test_retries_run_out_on_persistent_rate_limiting(server):
    server.script(*[error(429, "slow down", headers={"Retry-After": "0"})] * 2, completion("never reached"))
    with pytest.raises(LLMError, match="rate-limiting"):
        backend_for(server, max_retries=1).complete(request())
    assert len(server.requests) == 2


def test_no_retry_on_401(server):
    server.script(error(401, "bad key"), completion("never reached"))
    with pytest.raises(BackendUnavailableError, match="refused the API key"):
        backend_for(server, max_retries=2).complete(request())
    assert len(server.requests) == 1


# --- credentials in the URL ------------------------------------------------------------------------------------


def test_endpoint_hides_url_credentials(server):
    backend = OpenAIBackend(model="lamp-7b", base_url=with_credentials(server.base_url), max_retries=0)
    assert backend.endpoint == f"http://***@127.0.0.1:{server.port}/v1"
    assert "s3cret" not in json.dumps(backend_identity(backend))


@pytest.mark.parametrize(
    "reply",
    [error(401, "bad key"), error(500, "boom"), error(400, CONTEXT_MESSAGE), no_choices(), delayed(1.5)],
    ids=["401", "500", "400-context", "no-choices", "timeout"],
)
def test_error_messages_never_show_url_credentials(server, reply):
    server.script(reply)
    backend = OpenAIBackend(model="lamp-7b", base_url=with_credentials(server.base_url), max_retries=0,
                            timeout=0.5)
    with pytest.raises(HyperAlignError, match=re.escape(f"http://***@127.0.0.1:{server.port}/v1")) as caught:
        backend.complete(request())
    assert "s3cret" not in str(caught.value)
    assert "keeper" not in str(caught.value)


def test_unreachable_endpoint_message_never_shows_url_credentials():
    url = f"http://keeper:s3cret@127.0.0.1:{closed_port()}/v1"
    backend = OpenAIBackend(model="lamp-7b", base_url=url, max_retries=0)
    with pytest.raises(BackendUnavailableError, match=r"cannot reach the LLM endpoint http://\*\*\*@127\.0\.0\.1") as caught:
        backend.complete(request())
    assert "s3cret" not in str(caught.value)


# --- the completion cache's key --------------------------------------------------------------------------------


def test_identity_differs_between_endpoints_with_the_same_model():
    one = OpenAIBackend(model="lamp-7b", base_url="http://127.0.0.1:8001/v1")
    other = OpenAIBackend(model="lamp-7b", base_url="http://127.0.0.1:8002/v1")
    assert backend_identity(one) != backend_identity(other)
    assert cache_key(backend_identity(one), request()) != cache_key(backend_identity(other), request())


def test_identity_ignores_the_api_key_and_url_credentials():
    url = "http://127.0.0.1:8001/v1"
    variants = [
        OpenAIBackend(model="lamp-7b", base_url=with_credentials(url), api_key="sk-first-key"),
        OpenAIBackend(model="lamp-7b", base_url=with_credentials(url), api_key="sk-second-key"),
        OpenAIBackend(model="lamp-7b", base_url=url.replace("http://", "http://relief:hunter2@"), api_key="sk-x"),
    ]
    identities = [backend_identity(backend) for backend in variants]
    assert identities[0] == identities[1] == identities[2]
    assert OpenAIBackend(model="lamp-7b", base_url=url, api_key="sk-a").identity() == \
        OpenAIBackend(model="lamp-7b", base_url=url, api_key="sk-b").identity()
    shown = json.dumps(identities)
    for secret in ("sk-first-key", "sk-second-key", "s3cret", "hunter2"):
        assert secret not in shown


def test_identity_never_contains_the_api_key():
    backend = OpenAIBackend(model="lamp-7b", base_url="http://127.0.0.1:8001/v1", api_key="sk-very-secret-999")
    identity = backend_identity(backend)
    assert identity == {"backend": "openai", "model": "lamp-7b", "endpoint": "http://127.0.0.1:8001/v1",
                        "logit_bias_mapping": "server-tokenize-1"}  # keys biased requests only (llm/client.py)
    assert "sk-very-secret-999" not in json.dumps(identity)


def test_cached_answer_of_one_server_is_not_served_for_another(server, tmp_path):
    cache = CompletionCache(tmp_path / "llm-cache.sqlite3")
    try:
        with OpenAITestServer(default=completion("from the second server")) as second:
            server.script(completion("from the first server"))
            first_client = LLMClient(backend_for(server), cache=cache)
            assert first_client.complete(request()).text == "from the first server"
            again = first_client.complete(request())
            assert (again.text, again.cached) == ("from the first server", True)  # the cache works...
            assert len(server.requests) == 1

            got = LLMClient(backend_for(second), cache=cache).complete(request())
            assert (got.text, got.cached) == ("from the second server", False)  # ...but is keyed by endpoint
            assert len(second.requests) == 1
            assert cache.count() == 2
    finally:
        cache.close()


# --- the async path --------------------------------------------------------------------------------------------


async def test_async_payload_matches_the_sync_one(server):
    backend = backend_for(server, api_key="sk-async")
    backend.complete(request(json_schema=SCHEMA, schema_name="reading", seed=None, max_tokens=64))
    got = await backend.acomplete(request(json_schema=SCHEMA, schema_name="reading", seed=None, max_tokens=64))
    assert got.text == "Gears first, opinions later."
    sync_sent, async_sent = server.requests
    assert async_sent.body == sync_sent.body
    assert "seed" not in async_sent.body and async_sent.body["max_tokens"] == 64
    assert async_sent.headers["authorization"] == "Bearer sk-async"


async def test_async_maps_completion_fields(server):
    server.script(completion(None, finish_reason="length", prompt_tokens=8, completion_tokens=3, model="m-async"))
    got = await backend_for(server).acomplete(request())
    assert (got.text, got.finish_reason, got.model) == ("", "length", "m-async")
    assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (8, 3)


async def test_async_context_overflow(server):
    server.script(error(400, CONTEXT_MESSAGE))
    with pytest.raises(ContextOverflowError, match="too long for lamp-7b"):
        await backend_for(server).acomplete(request())


async def test_async_retries_then_succeeds(server):
    server.script(error(429, "slow down", headers={"Retry-After": "0"}), completion("second time"))
    got = await backend_for(server, max_retries=1).acomplete(request())
    assert got.text == "second time"
    assert len(server.requests) == 2


async def test_async_connection_refused():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(BackendUnavailableError, match="cannot reach the LLM endpoint"):
        await OpenAIBackend(model="lamp-7b", base_url=url, max_retries=0).acomplete(request())


async def test_async_through_the_client_uses_the_cache(server, tmp_path):
    cache = CompletionCache(tmp_path / "c.sqlite3")
    try:
        client = LLMClient(backend_for(server), cache=cache)
        first = await client.acomplete(request())
        second = await client.acomplete(request())
        assert (first.cached, second.cached) == (False, True)
        assert len(server.requests) == 1
    finally:
        cache.close()


async def test_async_non_json_200_is_a_hyperalign_error(server):
    server.script(raw(b"not json at all"))
    with pytest.raises(HyperAlignError, match=re.escape(server.base_url)):
        await backend_for(server).acomplete(request())


def test_sync_calls_one_after_another_on_a_server_that_keeps_connections_open():
    """The sync API runs each call in a fresh event loop, and real servers (llama.cpp, vLLM, Ollama) keep the
    connection open: the second call must not reuse a connection of the first, closed loop."""
    with OpenAITestServer(keep_alive=True) as server:
        client = LLMClient(backend_for(server))
        server.script(completion("first"), completion("second"), completion("third"))
        answers = [client.complete(request(max_tokens=n)).text for n in (8, 9, 10)]
    assert answers == ["first", "second", "third"]
    assert len(server.requests) == 3


# --- inference through a self-hosted endpoint ----------------------------------------------------------------------


def enum_lists(schema) -> list[list]:
    if isinstance(schema, dict):
        return ([schema["enum"]] if "enum" in schema else []) + [e for v in schema.values() for e in enum_lists(v)]
    return [e for v in schema for e in enum_lists(v)] if isinstance(schema, list) else []


def test_a_self_hosted_endpoint_gets_the_quote_menu_and_one_call(server, examples):
    """A --base-url server (llama.cpp, vLLM, Ollama) enforces the schema while decoding, so the proposal offers the
    examples' own sentences as the only allowed quotes; OpenAI's own API does not, and gets no menu."""
    from hyperalign.profiles.model import ASPECT_GUIDANCE

    quote = "Gears first, opinions later."
    answer = {aspect: [{"statement": f"{aspect}: repeats a motto", "evidence": [quote]},
                       {"statement": f"{aspect}: signs every note", "evidence": ["— Keeper Morwenna, North Light"]}]
              for aspect in ASPECT_GUIDANCE}
    answer["attributes"] = {"likely_role": "keeper", "domain": "lighthouse", "audience": "relief keepers",
                            "formality": "informal"}
    server.script(completion(json.dumps(answer)))
    from hyperalign.pipeline.infer import InferenceOptions

    profile = HyperAlign(LLMClient(backend_for(server))).infer_profile("morwenna", examples,
                                                                     options=InferenceOptions(method="paper"))
    [sent] = server.requests  # one call: an API endpoint is billed for every prompt token again
    menus = enum_lists(sent.body["response_format"]["json_schema"]["schema"])
    sentences = [m for m in menus if quote in m]
    assert sentences and all("Fog again." not in m for m in sentences)  # the examples' sentences, none too short
    assert len(profile.inferred_hypotheses) == 2 * len(ASPECT_GUIDANCE)
    assert backend_for(server).capabilities.schema_decoding
    assert not OpenAIBackend(model="gpt-4o-mini", api_key="sk-test").capabilities.schema_decoding
