"""A real OpenAI-compatible HTTP server for tests: standard library only, on 127.0.0.1, in a background thread.

    with OpenAITestServer() as server:
        server.script(error(429, "slow down", headers={"Retry-After": "0"}), completion("Gears first."))
        backend = OpenAIBackend(model="m", base_url=server.base_url)
        ...
        assert server.requests[0].body["model"] == "m"

It serves `POST /v1/chat/completions` (any other path answers 404), records every request it receives, and
answers from a script: a queue of `Reply`s, one per request; once the queue is empty, `default` (a completion).
Given a `vocabulary` (text -> token id), it also serves `POST /tokenize` as llama.cpp's server does: a text that is
in the vocabulary is that one token, any other text one token per character (unknown characters: id 0). Those
requests are recorded apart, in `tokenize_requests`; without a vocabulary /tokenize answers 404."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

COMPLETIONS_PATH = "/v1/chat/completions"
TOKENIZE_PATH = "/tokenize"
MAX_DELAY = 2.0  # seconds: a delayed reply never holds a test longer than this


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, raw body and extra headers, sent after `delay` seconds."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    gate: threading.Event | None = None  # sent only once the test sets it: timing decided by the test, not a clock


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON, or None where the body was not JSON
    at: float = field(default_factory=time.monotonic)  # when it arrived


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=json.dumps(payload).encode("ascii"), headers=dict(headers or {}))


def completion(content: str | None = "Gears first, opinions later.", finish_reason: str | None = "stop",
               prompt_tokens: int = 11, completion_tokens: int = 5, model: str = "test-model",
               top_logprobs: dict[str, float] | None = None, cached_tokens: int | None = None) -> Reply:
    """A normal chat completion. JSON is written ASCII-only, so a lone surrogate travels as the escape "\\ud800".
    `top_logprobs` (token -> log-probability) answers a logprobs request: one output token, these alternatives;
    `cached_tokens`, what the server says it reused of the prompt (`usage.prompt_tokens_details`)."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason,
                              "message": {"role": "assistant", "content": content}}
    if top_logprobs is not None:
        alternatives = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top_logprobs.items()]
        choice["logprobs"] = {"content": [{"token": content, "logprob": max(top_logprobs.values()),
                                           "bytes": list((content or "").encode()), "top_logprobs": alternatives}]}
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens}
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return _json(200, {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [choice], "usage": usage,
    })


def error(status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None) -> Reply:
    """An HTTP error with an OpenAI-style JSON error body."""
    return _json(status, {"error": {"message": message, "type": "test_error", "param": None, "code": code}}, headers)


def streamed(pieces: list[str], model: str = "test-model", finish_reason: str = "stop") -> Reply:
    """A streamed chat completion (server-sent events): a role chunk, one chunk per piece, a finishing chunk."""
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
    deltas = [({"role": "assistant", "content": ""}, None), *(({"content": p}, None) for p in pieces),
              ({}, finish_reason)]
    events = [json.dumps(base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
              for delta, finish in deltas]
    body = "".join(f"data: {event}\n\n" for event in [*events, "[DONE]"])
    return Reply(status=200, body=body.encode("ascii"), content_type="text/event-stream")


def no_choices(model: str = "test-model") -> Reply:
    """A 200 whose completion holds no choice at all."""
    return _json(200, {"id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
                       "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}})


def raw(body: bytes, status: int = 200, content_type: str = "application/json") -> Reply:
    """Any bytes, e.g. a 200 whose body is not JSON."""
    return Reply(status=status, body=body, content_type=content_type)


def delayed(seconds: float, reply: Reply | None = None) -> Reply:
    """`reply` (a default completion if None) after `seconds` (at most MAX_DELAY)."""
    if not 0 <= seconds <= MAX_DELAY:
        raise ValueError(f"a delay must be within 0..{MAX_DELAY} s")
    return replace(reply or completion(), delay=seconds)


def held(gate: threading.Event, reply: Reply | None = None) -> Reply:
    """`reply` (a default completion if None) once the test sets `gate` (or the server stops: then never)."""
    return replace(reply or completion(), gate=gate)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up (timeout tests) is expected
            super().handle_error(request, client_address)


class OpenAITestServer:
    """Start on enter (or `start()`), stop on exit (or `stop()`); `base_url` is "http://127.0.0.1:PORT/v1"."""

    def __init__(self, default: Reply | None = None, keep_alive: bool = False,
                 vocabulary: dict[str, int] | None = None):
        """`keep_alive`: keep each connection open for the next request, as llama.cpp, vLLM and Ollama do (by
        default every reply closes its connection, so no idle handler threads linger)."""
        self.default = default or completion()
        self.keep_alive = keep_alive
        self.vocabulary = vocabulary
        self.requests: list[RecordedRequest] = []
        self.tokenize_requests: list[RecordedRequest] = []
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # wakes delayed replies at shutdown
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-test-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies, answered in order, one per request."""
        with self._lock:
            self._queue.extend(replies)

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if request.path == TOKENIZE_PATH:  # kept apart: `requests` are what the chat endpoint was asked
                self.tokenize_requests.append(request)
                if self.vocabulary is None or not isinstance(request.body, dict):
                    return error(404, "no route /tokenize")
                text = str(request.body.get("content", ""))
                found = self.vocabulary.get(text)
                tokens = [found] if found is not None else [self.vocabulary.get(c, 0) for c in text]
                return _json(200, {"tokens": tokens})
            self.requests.append(request)
            if request.path != COMPLETIONS_PATH:
                return error(404, f"no route {request.path}")
            return self._queue.pop(0) if self._queue else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(data)
                except ValueError:
                    body = None
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = server._next_reply(RecordedRequest(self.path.split("?")[0], headers, body))
                if reply.delay and server._stopping.wait(reply.delay):
                    return  # shutting down: drop the connection unanswered
                while reply.gate is not None and not reply.gate.is_set():
                    if server._stopping.wait(0.02):
                        return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                if not server.keep_alive:
                    self.send_header("Connection", "close")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        return Handler

    def start(self) -> OpenAITestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never ran
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    __enter__ = start

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
