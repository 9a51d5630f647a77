"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, ...

Retries on timeouts, 429 and 5xx come from the openai SDK (`max_retries`, exponential backoff)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import openai

from ..errors import BackendUnavailableError, ContextOverflowError, LLMError
from .base import Completion, CompletionRequest, Usage

# Local servers (vLLM, Ollama, llama.cpp) ignore the key, but the SDK insists on one.
_PLACEHOLDER_KEY = "not-needed"


class OpenAIBackend:
    name: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        context_tokens: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        **_: Any,
    ):
        self.model = model or os.environ.get("HYPERALIGN_MODEL") or "gpt-4o-mini"
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        key = api_key or os.environ.get("OPENAI_API_KEY") or (_PLACEHOLDER_KEY if self.base_url else None)
        if key is None:
            raise BackendUnavailableError(
                "the openai backend needs an API key: set OPENAI_API_KEY or pass --api-key "
                "(or --base-url for a local server that needs none)"
            )
        self.context_tokens = context_tokens
        options = dict(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=max_retries)
        self._sync = openai.OpenAI(**options)
        self._async = openai.AsyncOpenAI(**options)

    def _arguments(self, request: CompletionRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            arguments["seed"] = request.seed
        if request.json_schema is not None:
            # strict=False: strict mode rejects maxLength/maxItems, which keep small models from looping.
            arguments["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": request.json_schema, "strict": False},
            }
        return arguments

    def _completion(self, response: Any) -> Completion:
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            usage=Usage(
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            ),
            model=response.model or self.model,
        )

    def _translate(self, exc: openai.APIError) -> Exception:
        where = self.base_url or "the OpenAI API"
        if isinstance(exc, openai.APIConnectionError):
            return BackendUnavailableError(f"cannot reach the LLM endpoint {where}: {exc}")
        if isinstance(exc, openai.BadRequestError) and "context" in str(exc).lower():
            return ContextOverflowError(f"{where} rejected the prompt as too long for {self.model}: {exc.message}")
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return BackendUnavailableError(f"{where} refused the API key: {exc.message}")
        if isinstance(exc, openai.NotFoundError):
            return BackendUnavailableError(f"{where} does not serve model '{self.model}': {exc.message}")
        return LLMError(f"{where} answered with an error: {exc}")

    def complete(self, request: CompletionRequest) -> Completion:
        try:
            return self._completion(self._sync.chat.completions.create(**self._arguments(request)))
        except openai.APIError as exc:
            raise self._translate(exc) from None

    async def acomplete(self, request: CompletionRequest) -> Completion:
        try:
            return self._completion(await self._async.chat.completions.create(**self._arguments(request)))
        except openai.APIError as exc:
            raise self._translate(exc) from None
