"""A deterministic backend for tests and dry runs: scripted replies, and a record of every request."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from .base import Capabilities, Completion, CompletionRequest, LLMBackend, TokenLogprobs, Usage

Responder = Callable[[CompletionRequest], str]
# Scripted first-token probabilities for a request (token -> probability), for tests of the label-probability judges.
ProbabilityResponder = Callable[[CompletionRequest], dict[str, float]]


def _default_reply(request: CompletionRequest) -> str:
    """Valid output for any schema hyperalign uses, built from the prompt, so pipelines run end to end."""
    if request.json_schema is None:
        last = request.messages[-1]["content"]
        return f"[fake completion for a {len(last)}-character prompt]"
    return json.dumps(_fill(request.json_schema, request.json_schema))


def _fill(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _fill(root["$defs"][schema["$ref"].split("/")[-1]], root)
    if "const" in schema:  # a one-value Literal
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {key: _fill(sub, root) for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_fill(schema["items"], root) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    return "fake " * max(1, -(-schema.get("minLength", 0) // 5))


def _common_prefix(before: list[str], now: list[str]) -> int:
    shared = 0
    for a, b in zip(before, now, strict=False):  # up to the shorter one
        if a != b:
            break
        shared += 1
    return shared


class FakeBackend(LLMBackend):
    """Replies come from `responses` (a list consumed in order, or a function of the request); otherwise a
    schema-valid default. Every request is appended to `requests`, so tests can read the prompts it saw.

    `probabilities` scripts the first output token's distribution (then the backend declares `logprobs`, and the
    reply's first token is the likeliest); `capabilities` declares what else it pretends to do (with `prefill`, a
    reply continues the request's prefill; `logit_bias` it records in `requests`, as a real backend receives it;
    `tokenize` and `count_tokens` split on whitespace, one id per word; with `prompt_prefix_cache`, a prompt's words
    shared with the start of the one before count as cached prompt tokens, as llama.cpp's one slot reports them)."""

    name: ClassVar[str] = "fake"

    def __init__(
        self,
        responses: Iterable[str] | Responder | None = None,
        model: str = "fake-model",
        context_tokens: int | None = None,
        probabilities: ProbabilityResponder | None = None,
        capabilities: Capabilities | None = None,
        **_: Any,
    ):
        self.model = model
        self.context_tokens = context_tokens
        self.probabilities = probabilities
        self.capabilities = (capabilities or Capabilities()).model_copy(
            update={"logprobs": True} if probabilities else {})
        self.requests: list[CompletionRequest] = []
        self._held: list[str] = []  # the last prompt's words: its one-slot prefix cache, as llama.cpp's
        if callable(responses):
            self._responder: Responder = responses
        else:
            queue = list(responses or [])
            self._responder = lambda request: queue.pop(0) if queue else _default_reply(request)

    def reply(self, request: CompletionRequest) -> Completion:
        """The scripted answer to `request` (recorded in `requests`)."""
        self.requests.append(request)
        logprobs = None
        if self.probabilities and request.top_logprobs:
            top = sorted(self.probabilities(request).items(), key=lambda item: -item[1])[: request.top_logprobs]
            chosen, probability = top[0]
            logprobs = [TokenLogprobs(token=chosen, logprob=math.log(probability),
                                      top={token: math.log(p) for token, p in top if p > 0})]
            text = chosen
        else:
            text = self._responder(request)
            if request.prefill and self.capabilities.prefill:  # a continuation of the given start, as llama.cpp's
                text = f"{request.prefill} {text}"
        prompt = [word for m in request.messages for word in m["content"].split()]
        held, self._held = self._held, prompt
        return Completion(
            text=text,
            model=self.model,
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(text.split()),
                        cached_prompt_tokens=_common_prefix(held, prompt) if self.capabilities.prompt_prefix_cache else 0),
            logprobs=logprobs,
        )

    async def acomplete(self, request: CompletionRequest) -> Completion:
        return self.reply(request)

    async def atokenize(self, text: str) -> list[int]:
        if not self.capabilities.tokenize:
            return await super().atokenize(text)
        return [sum(map(ord, word)) for word in text.split()]

    def count_tokens(self, text: str) -> int:
        if not self.capabilities.count_tokens:
            return super().count_tokens(text)
        return len(text.split())
