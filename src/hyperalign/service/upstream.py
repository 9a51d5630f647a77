"""Where chat requests go after personalization. Two kinds:
- an OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama, OpenAI): the request passes through the openai SDK
  (its retries with backoff on timeouts, 429 and 5xx, honouring Retry-After), streaming token by token;
- any hyperalign backend (the embedded model, the fake one in tests): one completion, streamed in pieces.
Both answer with OpenAI's JSON: `complete` the completion's bytes, `stream` each server-sent event's data. An
OpenAI-compatible upstream's bytes pass through unparsed by the SDK (parsing them into its models and back was most
of the service's cost per request); only their shape is checked.

Failures become an UpstreamError with the HTTP status to answer with, in OpenAI's error shape:
- 400 (413): the upstream refused the client's own request body (an invalid parameter): its message, `code` and
  `param`, with anything key-like scrubbed;
- 502 (bad gateway): the upstream refused the service's credentials (401/403), does not serve the model (404), any
  other 4xx, a 5xx, or an answer that is not a chat completion — the operator's fault or the upstream's, never
  shown as the client's (a 401 would tell an OpenAI client that *its* key is wrong);
- 503 (unavailable, retry): the upstream cannot be reached, timed out, or is overloaded (429, 503), with the
  upstream's Retry-After passed on.
The operator's key never appears in an answer; the upstream's message goes to the server's log, scrubbed."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx
import openai

from ..errors import BackendUnavailableError, ContextOverflowError, HyperAlignError
from ..llm import Capabilities, CompletionRequest, LLMClient, TextBias
from ..llm.openai import EndpointFailure, classify_failure
from ..llm.server_tokens import ServerTokenizer, tokenize_url
from ..pipeline.generate import GenerationOptions
from ..pipeline.steer import Steering, prefill_text
from ..redaction import redact_text, redact_url

log = logging.getLogger("hyperalign.service.upstream")
SAMPLE_TEMPERATURE = GenerationOptions().sample_temperature
BAD_GATEWAY, UNAVAILABLE = "upstream_error", "upstream_unavailable"


class UpstreamError(Exception):
    def __init__(self, status: int, message: str, kind: str = BAD_GATEWAY, code: str | None = None,
                 param: str | None = None, retry_after: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers = {"Retry-After": retry_after} if retry_after else None


class Upstream(Protocol):
    description: str
    # What the model behind it can do beyond chat: the token levers of steering need `logit_bias` and `prefill`.
    capabilities: Capabilities

    async def models(self) -> list[str]: ...

    async def prepare(self) -> None:
        """Find out, once at start-up, what the upstream can do (`capabilities`)."""

    async def complete(self, body: dict[str, Any], steering: Steering | None = None) -> bytes: ...

    def stream(self, body: dict[str, Any], steering: Steering | None = None) -> AsyncIterator[str]: ...


class OpenAIUpstream:
    def __init__(self, base_url: str | None, api_key: str | None, *, model: str | None = None,
                 timeout: float = 120.0, max_retries: int = 2):
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout,
                                         max_retries=max_retries)
        self.model = model  # when set, every request goes to this model, whatever the client asked for
        self.description = redact_url(base_url) if base_url else "https://api.openai.com/v1"
        # Whether it continues a given start is unknown; token biases go through the server's own /tokenize where
        # `prepare` finds one (llm/server_tokens.py). Until then, and without one, the code levers only.
        self.capabilities = Capabilities()
        self._tokenizer = None if base_url is None else ServerTokenizer(
            tokenize_url(base_url), model, httpx.AsyncClient(timeout=timeout, trust_env=False, headers={
                "Authorization": f"Bearer {api_key}"} if api_key else {}))
        self._secrets = [api_key, base_url]  # never in an answer, nor in the server's log

    async def prepare(self) -> None:
        if self._tokenizer is not None and await self._tokenizer.logit_bias(
                [TextBias(text=".", bias=0.1)], self.description) is not None:
            self.capabilities = Capabilities(logit_bias=True)

    async def _arguments(self, body: dict[str, Any], steering: Steering | None) -> dict[str, Any]:
        rest = dict(body)
        messages, model = rest.pop("messages"), rest.pop("model", None)
        rest.pop("stream", None)
        if steering and steering.biases and self._tokenizer is not None and self.capabilities.logit_bias:
            mapped = await self._tokenizer.logit_bias(steering.biases, self.description) or {}
            own = rest.get("logit_bias")
            own = own if isinstance(own, dict) else {}
            if mapped:  # the client's own biases hold where both name a token
                rest["logit_bias"] = mapped | own
        return {"model": self.model or model, "messages": messages, "extra_body": rest or None}

    async def models(self) -> list[str]:
        """The model every request goes to, or else the upstream's own list."""
        if self.model:
            return [self.model]
        try:
            return [m.id async for m in self.client.models.list()]
        except openai.OpenAIError as exc:
            raise self._error(exc, {}) from None

    async def complete(self, body: dict[str, Any], steering: Steering | None = None) -> bytes:
        try:
            raw = await self.client.chat.completions.with_raw_response.create(**await self._arguments(body, steering))
        except openai.OpenAIError as exc:
            raise self._error(exc, body) from None
        content = raw.http_response.content
        try:
            parsed = json.loads(content)
            if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
                raise ValueError("not a chat completion")
        except ValueError:
            raise self._bad_response(f"a {raw.http_response.status_code} answer that is not a chat completion: "
                                     f"{content[:200]!r}") from None
        return content

    async def stream(self, body: dict[str, Any], steering: Steering | None = None) -> AsyncIterator[str]:
        events = 0
        try:
            async with self.client.chat.completions.with_streaming_response.create(
                    stream=True, **await self._arguments(body, steering)) as response:
                async for line in response.iter_lines():
                    if line.startswith("data:"):
                        data = line.removeprefix("data:").strip()
                        if data == "[DONE]":
                            break
                        if not events and not _is_json_object(data):
                            raise self._bad_response(f"a stream whose first event is not JSON: {data[:200]!r}")
                        events += 1
                        yield data
        except openai.OpenAIError as exc:
            raise self._error(exc, body) from None
        if not events:
            raise self._bad_response("a stream without any event")

    def _bad_response(self, detail: str) -> UpstreamError:
        log.warning("the upstream %s answered with %s", self.description, redact_text(detail, self._secrets))
        return UpstreamError(502, "the upstream model answered with something that is not a chat completion",
                             BAD_GATEWAY, "upstream_bad_response")

    def _error(self, exc: openai.OpenAIError, body: dict[str, Any]) -> UpstreamError:
        failure = classify_failure(exc)
        error = self._classify(failure, body)
        detail = redact_text(failure.detail, self._secrets)
        log.warning("the upstream %s failed (answered %d %s): %s", self.description, error.status, error.code, detail)
        return error

    def _classify(self, failure: EndpointFailure, body: dict[str, Any]) -> UpstreamError:
        kind, status, code, param = failure.kind, failure.status, failure.code, failure.param
        if kind == "timeout":
            return UpstreamError(503, "the upstream model did not answer in time; retry later", UNAVAILABLE,
                                 "upstream_timeout", retry_after=failure.retry_after)
        if kind == "unreachable":
            return UpstreamError(503, "the upstream model cannot be reached; retry later", UNAVAILABLE,
                                 "upstream_unreachable")
        if kind == "unreadable":
            return UpstreamError(502, "the upstream model answered with something that is not a chat completion",
                                 BAD_GATEWAY, "upstream_bad_response")
        if kind in ("bad_request", "context_overflow"):  # the client's request body, as the upstream read it
            said = redact_text(failure.message, self._secrets)
            return UpstreamError(400, f"the model refused the request: {said or 'invalid request'}",
                                 "invalid_request_error", code, param)
        if kind == "too_large":
            return UpstreamError(413, "the request is too large for the upstream model", "invalid_request_error",
                                 code, param)
        if kind == "auth":
            return UpstreamError(502, f"the upstream model refused this service's own credentials (HTTP {status}); "
                                 "this is not about your API key — the service's operator has to fix it",
                                 BAD_GATEWAY, "upstream_authentication_failed")
        if kind == "not_found":
            model = self.model or body.get("model")
            return UpstreamError(502, f"the upstream does not serve the model {model!r} (HTTP 404)", BAD_GATEWAY,
                                 "upstream_model_not_found", "model" if not self.model else None)
        if kind == "quota":
            return UpstreamError(502, "the upstream account is out of quota; the service's operator has to fix it",
                                 BAD_GATEWAY, "upstream_quota_exceeded")
        if kind in ("rate_limited", "overloaded"):
            return UpstreamError(503, "the upstream model is overloaded; retry later", UNAVAILABLE,
                                 "upstream_overloaded", retry_after=failure.retry_after)
        return UpstreamError(502, f"the upstream model failed (HTTP {status})", BAD_GATEWAY, "upstream_error")


def sampled(body: dict[str, Any], offset: int) -> dict[str, Any]:
    """The same chat request sampled once more: the library's sampling temperature for best-of and rewrites
    (GenerationOptions.sample_temperature), and the seed `offset` after the request's own (0 where it gave none)."""
    given = body.get("seed")
    return body | {"temperature": SAMPLE_TEMPERATURE, "seed": (given if isinstance(given, int) else 0) + offset}


def _is_json_object(data: str) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def message_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""


class BackendUpstream:
    """A hyperalign backend behind the chat endpoint: the embedded model (a demo on one machine) or the fake one."""

    def __init__(self, client: LLMClient):
        self.client = client
        self.description = f"{client.backend.name} backend ({client.model})"
        self.capabilities = client.backend.capabilities

    async def models(self) -> list[str]:
        return [self.client.model]

    async def prepare(self) -> None:  # its capabilities are the backend's own
        pass

    async def _completion(self, body: dict[str, Any], steering: Steering | None) -> tuple[str, Any]:
        # The body was validated by the chat endpoint's model (service/chat.py): these are the types it allows.
        seed = body.get("seed")
        request = CompletionRequest(
            messages=[{"role": str(m.get("role", "user")), "content": message_text(m.get("content"))} for m in body["messages"]],
            max_tokens=int(body.get("max_completion_tokens") or body.get("max_tokens") or 512),
            temperature=float(body.get("temperature") or 0.0),
            seed=seed % 2**31 if isinstance(seed, int) else 0,  # what every runtime takes (llama.cpp: 32 bits)
            logit_bias=steering.biases if steering else [],
            prefill=prefill_text(steering) if steering else None,
        )
        try:
            completion = await self.client.acomplete(request)
        except ContextOverflowError:
            raise UpstreamError(400, "the conversation does not fit into the model's context; send a shorter one",
                                "invalid_request_error", "context_length_exceeded", "messages") from None
        except BackendUnavailableError as exc:
            log.warning("the model is unavailable: %s", redact_text(str(exc)))
            raise UpstreamError(503, "the model is unavailable; retry later", UNAVAILABLE,
                                "upstream_unreachable") from None
        except HyperAlignError as exc:
            log.warning("the model failed: %s", redact_text(str(exc)))
            raise UpstreamError(502, "the model failed to answer", BAD_GATEWAY, "upstream_error") from None
        return f"chatcmpl-{uuid.uuid4().hex}", completion

    async def complete(self, body: dict[str, Any], steering: Steering | None = None) -> bytes:
        completion_id, completion = await self._completion(body, steering)
        return json.dumps({
            "id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": completion.model or self.client.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                         "finish_reason": completion.finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": completion.usage.prompt_tokens,
                      "completion_tokens": completion.usage.completion_tokens,
                      "total_tokens": completion.usage.prompt_tokens + completion.usage.completion_tokens,
                      # OpenAI's field for what the model reused of the prompt (here: the embedded model's prefix).
                      "prompt_tokens_details": {"cached_tokens": completion.usage.cached_prompt_tokens}},
        }).encode()

    async def stream(self, body: dict[str, Any], steering: Steering | None = None) -> AsyncIterator[str]:
        completion_id, completion = await self._completion(body, steering)
        base = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": completion.model or self.client.model}
        deltas = [({"role": "assistant", "content": ""}, None), *(({"content": p}, None) for p in _pieces(completion.text)),
                  ({}, completion.finish_reason)]
        for delta, finish in deltas:
            yield json.dumps(base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _pieces(text: str) -> list[str]:
    """Word-sized pieces that join back to the exact text."""
    pieces, start = [], 0
    for index in range(1, len(text)):
        if text[index] == " " and text[index - 1] != " ":
            pieces.append(text[start:index])
            start = index
    if text:
        pieces.append(text[start:])
    return pieces
