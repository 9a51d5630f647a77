"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, ...

Retries on timeouts, 429 and 5xx come from the openai SDK (`max_retries`, exponential backoff that honours
Retry-After). Every error becomes one of hyperalign's, with the endpoint named without its credentials."""

from __future__ import annotations

import email.utils
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx
import openai

from ..errors import BackendUnavailableError, ContextOverflowError, InputError, LLMError
from ..redaction import redact_url, validate_base_url
from .base import Capabilities, Completion, CompletionRequest, LLMBackend, Usage, chat_arguments, parse_logprobs
from .loop import on_llm_loop
from .server_tokens import MAPPING, ServerTokenizer, tokenize_url

# Local servers (vLLM, Ollama, llama.cpp) ignore the key, but the SDK insists on one.
_PLACEHOLDER_KEY = "not-needed"
OPENAI_API_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
_DETAIL_CHARS = 300


FailureKind = Literal["timeout", "unreachable", "unreadable", "bad_request", "context_overflow", "too_large", "auth",
                      "not_found", "quota", "rate_limited", "overloaded", "status"]


@dataclass(frozen=True)
class EndpointFailure:
    """What went wrong with an OpenAI-compatible endpoint, read once from the SDK's exception: the library turns it
    into its errors (`OpenAIBackend`), the service into HTTP answers (service/upstream.py)."""

    kind: FailureKind
    detail: str  # the SDK's own description, on one line (it may quote the request: redact before showing)
    status: int | None = None
    message: str = ""  # the endpoint's own error message, where its body had one
    code: str | None = None  # the endpoint's `code` and `param`, only where they are short identifiers
    param: str | None = None
    retry_after: str | None = None  # its Retry-After (seconds or an HTTP date), or retry-after-ms in whole seconds


def classify_failure(exc: openai.OpenAIError) -> EndpointFailure:
    """The one reading of an openai SDK exception."""
    detail = " ".join(str(getattr(exc, "message", None) or exc).split())[:500]
    if isinstance(exc, openai.APITimeoutError):
        return EndpointFailure("timeout", detail)
    if isinstance(exc, openai.APIConnectionError):
        return EndpointFailure("unreachable", detail)
    if not isinstance(exc, openai.APIStatusError):  # e.g. a response the SDK could not read
        return EndpointFailure("unreadable", detail)
    status, body = exc.status_code, exc.body if isinstance(exc.body, dict) else {}
    message = " ".join(str(body.get("message") or "").split())[:500]
    code, param = _identifier(getattr(exc, "code", None)), _identifier(getattr(exc, "param", None))
    kind: FailureKind = "status"
    if status in (400, 422):
        kind = "context_overflow" if "context" in f"{detail} {message}".lower() else "bad_request"
    elif status == 413:
        kind = "too_large"
    elif status in (401, 403):
        kind = "auth"
    elif status == 404:
        kind = "not_found"
    elif status == 429:
        kind = "quota" if code == "insufficient_quota" else "rate_limited"
    elif status in (408, 504):
        kind = "timeout"
    elif status in (503, 529):
        kind = "overloaded"
    return EndpointFailure(kind, detail, status, message, code, param, _retry_after(exc.response.headers))


def _retry_after(headers: Any) -> str | None:
    value = str(headers.get("retry-after") or "").strip()
    if value.isdigit() and len(value) <= 6:
        return value
    if value and email.utils.parsedate_tz(value) is not None:
        return value
    milliseconds = str(headers.get("retry-after-ms") or "").strip()
    try:
        return str(max(1, math.ceil(float(milliseconds) / 1000))) if milliseconds else None
    except ValueError:
        return None


def _identifier(value: Any) -> str | None:
    """An endpoint's `code` or `param` worth passing on: a short identifier, never free text."""
    if isinstance(value, str) and 0 < len(value) <= 100 and value.replace("_", "").replace(".", "").replace(
            "[", "").replace("]", "").replace("-", "").isalnum():
        return value
    return None


class OpenAIBackend(LLMBackend):
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
        self.model = model or DEFAULT_MODEL
        if base_url is not None:
            try:
                validate_base_url(base_url)
            except ValueError as exc:
                raise InputError(f"invalid base URL: {exc}") from None
        self.context_tokens = context_tokens
        options: dict[str, Any] = dict(base_url=base_url, timeout=timeout, max_retries=max_retries)
        # Its connection pool belongs to the loop that opened it: every call runs on the process's one LLM loop
        # (loop.py), so one client serves them all. What is not given the SDK takes from its own environment
        # variables (OPENAI_API_KEY, OPENAI_BASE_URL), as it does for any caller; a local server needs no key.
        try:
            self._async = openai.AsyncOpenAI(api_key=api_key, **options)
        except openai.OpenAIError:  # no key given, none in the environment
            self._async = openai.AsyncOpenAI(api_key=_PLACEHOLDER_KEY, **options)
            if self._endpoint_url() == OPENAI_API_URL:
                raise BackendUnavailableError(
                    "the openai backend needs an API key (the api_key setting, or OPENAI_API_KEY); a local "
                    "OpenAI-compatible server at a base_url needs none") from None
        self.base_url = base_url or (None if self._endpoint_url() == OPENAI_API_URL else self._endpoint_url())
        # A server of our own (llama.cpp, vLLM, Ollama) enforces a JSON schema while decoding; OpenAI's API with a
        # non-strict schema does not, and a long enum there only costs tokens. Both return log-probabilities on
        # request (a server that ignores the request answers without them, and the judge says so).
        # Token steering where the server's own tokenizer answers /tokenize (server_tokens.py); OpenAI's API is not
        # steered (its tokenizer's files would come from elsewhere).
        self._tokenizer = None if self.base_url is None else ServerTokenizer(
            tokenize_url(self._endpoint_url()), self.model,
            httpx.AsyncClient(timeout=timeout, trust_env=False,
                              headers={"Authorization": f"Bearer {self._async.api_key}"}))
        self.capabilities = Capabilities(schema_decoding=self.base_url is not None, logprobs=True,
                                         logit_bias=self._tokenizer is not None)

    def _endpoint_url(self) -> str:
        return str(self._async.base_url).rstrip("/")

    @property
    def endpoint(self) -> str:
        """The endpoint as it may be shown or keyed: never with the credentials a URL can carry."""
        return redact_url(self.base_url) if self.base_url else OPENAI_API_URL

    def identity(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint} | ({"logit_bias_mapping": MAPPING} if self._tokenizer else {})

    def _arguments(self, request: CompletionRequest) -> dict[str, Any]:
        # strict=False: strict mode rejects maxLength/maxItems, which keep small models from looping.
        return {"model": self.model, **chat_arguments(request, strict=False)}

    def _completion(self, response: Any) -> Completion:
        """The SDK builds its response objects without validating them, so the shape is checked here: anything
        but an OpenAI chat completion is an LLMError naming the endpoint."""
        try:
            choices = response.choices
            if not choices:
                raise ValueError("no choices")
            choice = choices[0]
            content = choice.message.content
            if content is not None and not isinstance(content, str):
                raise ValueError(f"the message content is {type(content).__name__}, not text")
            usage = response.usage
            prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
            logprobs = getattr(choice, "logprobs", None)
            content_logprobs = [entry.model_dump() for entry in getattr(logprobs, "content", None) or []]
            return Completion(
                text=content or "",
                finish_reason=choice.finish_reason or "stop",
                usage=Usage(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                    # What the server reused of the prompt (OpenAI's prompt caching, llama.cpp's and vLLM's prefix
                    # cache); servers that do not say leave it 0.
                    cached_prompt_tokens=min(prompt_tokens, getattr(getattr(usage, "prompt_tokens_details", None),
                                                                    "cached_tokens", 0) or 0),
                ),
                model=getattr(response, "model", None) or self.model,
                logprobs=parse_logprobs(content_logprobs),
            )
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:  # ValidationError is a ValueError
            detail = " ".join(str(exc).split())[:_DETAIL_CHARS]
            raise LLMError(f"{self.endpoint} answered with something that is not an OpenAI chat completion for "
                           f"model '{self.model}' ({detail}); is it an OpenAI-compatible /v1 endpoint?") from None

    def _translate(self, exc: openai.OpenAIError) -> Exception:
        failure, where = classify_failure(exc), self.endpoint
        detail = failure.detail[:_DETAIL_CHARS]
        if failure.kind == "timeout" and failure.status is None:
            return BackendUnavailableError(f"{where} did not answer in time (after the SDK's retries)")
        if failure.kind == "unreachable":
            return BackendUnavailableError(f"cannot reach the LLM endpoint {where}; is the server running?")
        if failure.kind == "context_overflow" and failure.status == 400:
            return ContextOverflowError(f"{where} rejected the prompt as too long for {self.model}: {detail}")
        if failure.kind == "auth":
            return BackendUnavailableError(f"{where} refused the API key: {detail}")
        if failure.kind == "not_found":
            return BackendUnavailableError(f"{where} does not serve model '{self.model}' (or is not an "
                                           f"OpenAI-compatible /v1 endpoint): {detail}")
        if failure.kind in ("rate_limited", "quota"):
            return LLMError(f"{where} kept rate-limiting the requests (429) after the SDK's retries: {detail}")
        if failure.status is not None:
            return LLMError(f"{where} answered with HTTP {failure.status}: {detail}")
        return LLMError(f"{where} answered with an error: {detail}")

    def _not_json(self, exc: ValueError) -> LLMError:
        return LLMError(f"{self.endpoint} answered with a body that is not JSON ({' '.join(str(exc).split())[:120]}); "
                        "is it an OpenAI-compatible /v1 endpoint?")

    async def acomplete(self, request: CompletionRequest) -> Completion:
        return await on_llm_loop(self._acomplete(request))

    async def _acomplete(self, request: CompletionRequest) -> Completion:
        arguments, dropped = self._arguments(request), False
        if request.logit_bias and self._tokenizer is not None:
            mapped = await self._tokenizer.logit_bias(request.logit_bias, self.endpoint)
            dropped = mapped is None
            if mapped:
                arguments["logit_bias"] = mapped
        try:
            response = await self._async.chat.completions.create(**arguments)
        except openai.OpenAIError as exc:
            raise self._translate(exc) from None
        except ValueError as exc:
            raise self._not_json(exc) from None
        completion = self._completion(response)
        return completion.model_copy(update={"bias_dropped": True}) if dropped else completion

    async def aclose(self) -> None:
        await on_llm_loop(self._async.close())
        if self._tokenizer is not None:
            await on_llm_loop(self._tokenizer.http.aclose())
