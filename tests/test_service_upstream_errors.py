"""What a client of the service sees when the upstream fails, when its own request is bad, and in any error message.

- The upstream's failures are the service's, never the client's: a wrong operator key is a 502 (not a 401 that
  tells an OpenAI client its own key is wrong), an unreachable, slow or overloaded upstream a 503 with the
  upstream's Retry-After, a bad answer a 502; a 400 about the client's own request body stays a 400 with the
  upstream's code and param. No answer shows the operator's key or anything key-like.
- A bad chat body is a 400 naming the field (`param`), the same for every upstream, before any upstream call.
- Error messages speak the API's language: no internal tenant-scoped key, no tenant id, no CLI advice.
- `serve` refuses an upstream that is not http(s), a CORS origin that is not an origin, and an unusable rate limit:
  one line naming the option, exit 2."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from hyperalign import HyperAlign
from hyperalign.cli import app as cli
from hyperalign.llm import LLMClient
from hyperalign.llm.fake import FakeBackend
from hyperalign.profiles.store import ProfileStore
from hyperalign.service.app import build_state, create_app
from hyperalign.service.state import ServiceConfig
from hyperalign.service.tenants import authenticate, create_key
from openai_test_server import OpenAITestServer, Reply, completion, delayed, error, raw, streamed
from service_support import EXAMPLE_TEXT, RunningServer, responder

OPERATOR_KEY = "sk-proj-OPERATORkey0123456789abcdefWXYZ"
KEY_LIKE = re.compile(rf"sk-[A-Za-z0-9]|Bearer [A-Za-z0-9]|{OPERATOR_KEY[:12]}|{OPERATOR_KEY[-6:]}")
HI = [{"role": "user", "content": "Hi"}]


class Deployed:
    def __init__(self, url: str, store: ProfileStore, key: str, backend: FakeBackend):
        self.url, self.store, self.key, self.backend = url, store, key, backend

    def sdk(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)


def deploy(tmp_path: Any, upstream_base_url: str | None) -> Iterator[Deployed]:
    """The real app in a real uvicorn, with the operator's key for the upstream (no retries: each scripted reply is
    one answer)."""
    store = ProfileStore(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    backend = FakeBackend(responder)
    state = build_state(HyperAlign(LLMClient(backend)), store, ServiceConfig(job_poll_seconds=0.05),
                        upstream_base_url=upstream_base_url, upstream_api_key=OPERATOR_KEY, upstream_retries=0,
                        upstream_timeout=0.5)
    key, _ = create_key(store, "acme")
    with RunningServer(create_app(state)) as server:
        yield Deployed(server.url, store, key, backend)
    store.close()


@pytest.fixture
def upstream() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.fixture
def service(tmp_path, upstream) -> Iterator[Deployed]:
    yield from deploy(tmp_path, upstream.base_url)


@pytest.fixture
def builtin(tmp_path) -> Iterator[Deployed]:
    yield from deploy(tmp_path, None)


def failure(deployed: Deployed, stream: bool = False, **body: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as raised:
        created = deployed.sdk().chat.completions.create(model="m", messages=HI, stream=stream, **body)
        if stream:
            list(created)
    return raised.value


def assert_clean(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}, body  # OpenAI's shape
    text = json.dumps(body)
    assert not KEY_LIKE.search(text), text
    assert "Traceback" not in text and "127.0.0.1" not in text
    return body


ECHO = f"Incorrect API key provided: {OPERATOR_KEY[:12]}****************{OPERATOR_KEY[-4:]}"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("reply", "status", "code"), [
    (error(401, ECHO, code="invalid_api_key"), 502, "upstream_authentication_failed"),
    (error(403, f"Key {OPERATOR_KEY} may not use this project"), 502, "upstream_authentication_failed"),
    (error(404, "The model `m` does not exist", code="model_not_found"), 502, "upstream_model_not_found"),
    (error(500, f"boom at Bearer {OPERATOR_KEY}"), 502, "upstream_error"),
    (error(409, "conflict"), 502, "upstream_error"),
    (raw(b"<html>proxy error</html>"), 502, "upstream_bad_response"),
    (raw(b'{"object": "list"}'), 502, "upstream_bad_response"),
    (error(429, "slow down", headers={"Retry-After": "7"}), 503, "upstream_overloaded"),
    (error(503, "overloaded", headers={"Retry-After": "3"}), 503, "upstream_overloaded"),
    (delayed(1.5), 503, "upstream_timeout"),
])
def test_upstream_failures_are_the_services_not_the_clients(service, upstream, reply, status, code, stream):
    if stream and reply.status == 200 and not reply.delay and reply.body.startswith(b"{"):  # a stream that is not
        reply = Reply(status=200, body=b"data: not json\n\n", content_type="text/event-stream")
    upstream.script(reply)
    exc = failure(service, stream=stream)
    assert exc.status_code == status and not isinstance(exc, openai.AuthenticationError)
    body = assert_clean(exc)
    assert body["code"] == code
    assert body["type"] == ("upstream_error" if status == 502 else "upstream_unavailable")
    if "Retry-After" in reply.headers:
        assert exc.response.headers["retry-after"] == reply.headers["Retry-After"]
    assert upstream.requests[-1].headers["authorization"] == f"Bearer {OPERATOR_KEY}"  # it was the operator's key


def test_an_unreachable_upstream_is_unavailable(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    for deployed in deploy(tmp_path, f"http://127.0.0.1:{port}/v1"):
        for stream in (False, True):
            exc = failure(deployed, stream=stream)
            assert exc.status_code == 503 and assert_clean(exc)["code"] == "upstream_unreachable"


@pytest.mark.parametrize("stream", [False, True])
def test_a_bad_parameter_the_upstream_refuses_is_the_clients_400_scrubbed(service, upstream, stream):
    upstream.script(error(400, f"'tools[0].type' is invalid (request made with {OPERATOR_KEY}, Bearer abc.def, "
                               "sk-leaked0123456789)", code="invalid_value"))
    upstream.requests.clear()
    with pytest.raises(openai.BadRequestError) as raised:
        created = service.sdk().chat.completions.create(model="m", messages=HI, stream=stream,
                                                        extra_body={"tools": [{"type": "nope"}]})
        if stream:
            list(created)
    body = assert_clean(raised.value)
    assert "'tools[0].type' is invalid" in body["message"] and body["code"] == "invalid_value"


BAD_BODIES = [
    ({"max_tokens": "abc"}, "max_tokens"),
    ({"max_tokens": [1]}, "max_tokens"),
    ({"max_tokens": -5}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 2.5}, "max_tokens"),
    ({"max_completion_tokens": True}, "max_completion_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": 2.5}, "temperature"),
    ({"top_p": -0.1}, "top_p"),
    ({"n": 0}, "n"),
    ({"seed": "x"}, "seed"),
    ({"stop": 5}, "stop"),
    ({"stop": ["a", 3]}, "stop"),
    ({"presence_penalty": 3}, "presence_penalty"),
    ({"frequency_penalty": "x"}, "frequency_penalty"),
    ({"logit_bias": {"12": 101}}, "logit_bias.12"),
    ({"logit_bias": []}, "logit_bias"),
    ({"response_format": "json"}, "response_format"),
    ({"stream": "yes"}, "stream"),
    ({"user": 7}, "user"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages[0].content"),
]


@pytest.mark.parametrize(("bad", "param"), BAD_BODIES, ids=[p for _, p in BAD_BODIES])
@pytest.mark.parametrize("which", ["builtin", "openai-compatible"])
def test_a_bad_chat_body_is_a_400_naming_the_field_whatever_the_upstream(request, upstream, bad, param, which):
    deployed = request.getfixturevalue("builtin" if which == "builtin" else "service")
    before = len(deployed.backend.requests), len(upstream.requests)
    answer = deployed.http().post("/v1/chat/completions", json={"model": "m", "messages": HI} | bad)
    assert answer.status_code == 400, answer.text
    error_body = answer.json()["error"]
    assert error_body["type"] == "invalid_request_error" and error_body["param"] == param
    assert error_body["message"].startswith(param) and "Traceback" not in answer.text
    assert (len(deployed.backend.requests), len(upstream.requests)) == before  # no upstream was asked


def test_good_parameters_and_unknown_fields_pass_through(service, upstream):
    upstream.script(completion("Gears first."), streamed(["Gears", " first."]))
    extra = {"max_tokens": 7, "temperature": 0, "top_p": 1, "seed": 3, "stop": ["\n\n"], "logit_bias": {"50256": -100},
             "response_format": {"type": "json_object"}, "vendor_knob": {"beam": 2}}
    answer = service.http().post("/v1/chat/completions", json={"model": "m", "messages": HI} | extra)
    assert answer.status_code == 200, answer.text
    sent = upstream.requests[-1].body
    assert all(sent[k] == v for k, v in extra.items()) and isinstance(sent["max_tokens"], int)
    chunks = list(service.sdk().chat.completions.create(model="m", messages=HI, stream=True, max_tokens=5))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Gears first."


def test_the_builtin_upstream_answers_a_valid_body(builtin):
    answer = builtin.sdk().chat.completions.create(model="m", messages=HI, max_tokens=5, temperature=1, seed=2**62,
                                                   stop="x")
    assert answer.choices[0].message.content.startswith("Fog again.")


def test_api_errors_name_no_internal_key_no_tenant_id_and_no_cli_advice(builtin):
    tenant_id = authenticate(builtin.store, builtin.key)[1].id  # type: ignore[index]
    with builtin.http() as http:
        http.post("/v1/users/ann/examples", json={"examples": [{"text": EXAMPLE_TEXT}]}).raise_for_status()
        job = http.post("/v1/users/ann/jobs").json()
        for _ in range(600):
            if http.get(f"/v1/users/ann/jobs/{job['id']}").json()["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        answers = [
            http.patch("/v1/users/ann/profile", json={"pin": ["h-nope"]}),
            http.patch("/v1/users/ann/profile", json={"delete": ["h-nope"], "reword": {"h-other": "x"}}),
            http.get("/v1/users/ann/profile", params={"version": 99}),
            http.get("/v1/users/bob/profile"),
            http.get("/v1/users/bob/jobs/j1"),
            http.post("/v1/chat/completions", json={"model": "m", "messages": HI},
                      headers={"X-Hyperalign-Strategy": "telepathy", "X-Hyperalign-User": "ann"}),
            http.post("/v1/chat/completions", json={"model": "m", "messages": HI, "user": "a\u0007b"}),
        ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, answer.text
        message = answer.json()["error"]["message"]
        assert tenant_id not in message and f"{tenant_id}:" not in answer.text, message
        assert "`" not in message and "hyperalign " not in message and " --" not in message, message
    assert "h-nope" in answers[0].json()["error"]["message"]
    strategy = answers[5].json()["error"]
    assert "X-Hyperalign-Strategy" in strategy["message"] and strategy["param"] == "X-Hyperalign-Strategy"


runner = CliRunner()


@pytest.mark.parametrize(("options", "named"), [
    (["--upstream-base-url", "ftp://llm.example/v1"], "--upstream-base-url"),
    (["--upstream-base-url", "file:///etc/passwd"], "--upstream-base-url"),
    (["--upstream-base-url", "http:///v1"], "--upstream-base-url"),
    (["--cors-origin", "https://app.example.com\r\nX-Evil: 1"], "--cors-origin"),
    (["--cors-origin", "https://ok.example", "--cors-origin", "https://app.example.com\n"], "--cors-origin"),
    (["--cors-origin", "https://app.example.com/path"], "--cors-origin"),
    (["--cors-origin", "null"], "--cors-origin"),
    (["--rate-limit", "lots"], "--rate-limit"),
    (["--rate-limit", "0/minute"], "--rate-limit"),
    (["--rate-limit", "10/second;0/hour"], "--rate-limit"),
    (["--upstream-api-key", "sk-abc\r\ndef"], "--upstream-api-key"),
])
def test_serve_refuses_bad_options_in_one_line(tmp_path, options, named):
    result = runner.invoke(cli, ["--backend", "fake", "serve", "--store", str(tmp_path / "s.sqlite3"), *options])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {named}"), result.output
    assert "pydantic" not in result.output and "Traceback" not in result.output
    assert "\r" not in result.output
