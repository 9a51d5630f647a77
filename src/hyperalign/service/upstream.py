"""Where chat requests go after personalization. Two kinds:
- an OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama, OpenAI): the request passes through the openai SDK
  (its retries with backoff on timeouts, 429 and 5xx, honouring Retry-After), streaming token by token;
- any hyperalign backend (the embedded model, the fake one in tests): one completion, streamed in pieces.
Both answer with OpenAI's JSON: `complete` the completion's bytes, `stream` each server-sent event's data. An
OpenAI-compatible upstream's bytes pass through unparsed (parsing them into the SDK's models and back was most of the
service's cost per request). Failures become an UpstreamError with the HTTP status to answer with."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import openai

from ..errors import HyperAlignError
from ..llm import CompletionRequest, LLMClient
from ..llm.endpoint import redact_url


class UpstreamError(Exception):
    def __init__(self, status: int, message: str, kind: str = "upstream_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class Upstream(Protocol):
    description: str

    async def complete(self, body: dict[str, Any]) -> bytes: ...

    def stream(self, body: dict[str, Any]) -> AsyncIterator[str]: ...


class OpenAIUpstream:
    def __init__(self, base_url: str | None, api_key: str | None, *, model: str | None = None,
                 timeout: float = 120.0, max_retries: int = 2):
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout,
                                         max_retries=max_retries)
        self.model = model  # when set, every request goes to this model, whatever the client asked for
        self.description = redact_url(base_url) if base_url else "https://api.openai.com/v1"

    def _arguments(self, body: dict[str, Any]) -> dict[str, Any]:
        rest = dict(body)
        messages, model = rest.pop("messages"), rest.pop("model", None)
        rest.pop("stream", None)
        return {"model": self.model or model, "messages": messages, "extra_body": rest or None}

    async def complete(self, body: dict[str, Any]) -> bytes:
        try:
            raw = await self.client.chat.completions.with_raw_response.create(**self._arguments(body))
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        return raw.http_response.content

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str]:
        try:
            async with self.client.chat.completions.with_streaming_response.create(
                    stream=True, **self._arguments(body)) as response:
                async for line in response.iter_lines():
                    if line.startswith("data:"):
                        data = line.removeprefix("data:").strip()
                        if data == "[DONE]":
                            return
                        yield data
        except openai.OpenAIError as exc:
            raise self._error(exc) from None

    def _error(self, exc: openai.OpenAIError) -> UpstreamError:
        detail = " ".join(str(getattr(exc, "message", None) or exc).split())[:300]
        if isinstance(exc, openai.APITimeoutError):
            return UpstreamError(504, "the upstream model did not answer in time", "upstream_timeout")
        if isinstance(exc, openai.APIConnectionError):
            return UpstreamError(502, "cannot reach the upstream model", "upstream_unavailable")
        if isinstance(exc, openai.RateLimitError):
            return UpstreamError(429, f"the upstream model is rate-limiting requests: {detail}", "rate_limit_exceeded")
        if isinstance(exc, openai.APIStatusError) and 400 <= exc.status_code < 500:
            # The client's request was at fault (unknown model, bad parameter): its status and the reason.
            return UpstreamError(exc.status_code, f"the upstream model refused the request: {detail}",
                                 "invalid_request_error")
        return UpstreamError(502, f"the upstream model failed: {detail}", "upstream_error")


def _text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


class BackendUpstream:
    """A hyperalign backend behind the chat endpoint: the embedded model (a demo on one machine) or the fake one."""

    def __init__(self, client: LLMClient):
        self.client = client
        self.description = f"{client.backend.name} backend ({client.model})"

    async def _completion(self, body: dict[str, Any]) -> tuple[str, Any]:
        request = CompletionRequest(
            messages=[{"role": str(m.get("role", "user")), "content": _text(m.get("content"))} for m in body["messages"]],
            max_tokens=int(body.get("max_completion_tokens") or body.get("max_tokens") or 512),
            temperature=float(body.get("temperature") or 0.0),
            seed=body.get("seed") if isinstance(body.get("seed"), int) else 0,
        )
        try:
            completion = await self.client.acomplete(request)
        except HyperAlignError as exc:
            raise UpstreamError(502, f"the model failed: {' '.join(str(exc).split())[:300]}") from None
        return f"chatcmpl-{uuid.uuid4().hex}", completion

    async def complete(self, body: dict[str, Any]) -> bytes:
        completion_id, completion = await self._completion(body)
        return json.dumps({
            "id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": completion.model or self.client.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                         "finish_reason": completion.finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": completion.usage.prompt_tokens,
                      "completion_tokens": completion.usage.completion_tokens,
                      "total_tokens": completion.usage.prompt_tokens + completion.usage.completion_tokens},
        }).encode()

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[str]:
        completion_id, completion = await self._completion(body)
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
