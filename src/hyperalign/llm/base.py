"""The backend contract: chat messages in; text, token usage, finish reason (and, where the backend can, the
output tokens' log-probabilities) out. One async method is required; what a backend can do beyond plain chat it
declares in `capabilities`, and the pipeline asks those, never the backend's attributes."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..usage import Usage
from .loop import run_sync

Message = dict[str, str]
_UNSTORABLE = re.compile(r"[\ud800-\udfff\x00]")


class TextBias(BaseModel):
    """A bias on the tokens that write `text`, said in text so the pipeline needs no tokenizer: the backend maps it
    to its own vocabulary. `word`: the tokens that are the word itself led by a space, in its lower, capitalized
    and upper case (punctuation and contraction pieces also bare); `character`: every token that contains the
    character (a ban on "!" must also catch "!!" and "!\n")."""

    model_config = ConfigDict(frozen=True)
    text: str = Field(min_length=1, max_length=40)
    kind: Literal["word", "character"] = "word"
    bias: float = Field(ge=-100, le=100)


class CompletionRequest(BaseModel):
    messages: list[Message]
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = 0
    json_schema: dict[str, Any] | None = Field(default=None, description="constrain the output to this JSON schema")
    schema_name: str = "output"
    # Ask for the most likely tokens at each output position (the label-probability judges read them); honoured
    # only by a backend whose capabilities say `logprobs`.
    top_logprobs: int | None = Field(default=None, ge=1, le=20)
    # Decoding-time steering (pipeline/steer.py), honoured only by a backend whose capabilities say `logit_bias`.
    logit_bias: list[TextBias] = Field(default_factory=list)
    # The answer's start, written for the model: it continues from here (capability `prefill`). The completion's
    # text begins with it.
    prefill: str | None = Field(default=None, max_length=400)


class Capabilities(BaseModel):
    """What a backend can do beyond plain chat. The pipeline asks these; it never probes a backend's attributes."""

    model_config = ConfigDict(frozen=True)
    schema_decoding: bool = Field(False, description="enforces a JSON schema while decoding (a grammar)")
    logprobs: bool = Field(False, description="returns the top log-probabilities of each output token")
    prompt_prefix_cache: bool = Field(
        False, description="keeps the last prompt's tokens, so calls sharing a prefix pay for it once")
    logit_bias: bool = Field(False, description="maps a request's text biases onto its vocabulary while decoding")
    prefill: bool = Field(False, description="continues a given start of the answer (assistant prefill)")
    tokenize: bool = Field(False, description="turns text into the model's token ids (`atokenize`)")
    count_tokens: bool = Field(
        False, description="counts the model's tokens in a text exactly (`count_tokens`); where it cannot, the "
        "pipeline estimates from characters (text.CHARS_PER_TOKEN)")


class TokenLogprobs(BaseModel):
    """One output position: the token chosen and the most likely alternatives (token text -> log-probability)."""

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class Completion(BaseModel):
    text: str
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage, description="this call's tokens (its calls: `Usage.of(completion)`)")
    model: str = ""
    cached: bool = False
    # Time the backend spent on this call, without the wait for a free slot (so concurrent jobs are not charged
    # for each other); None when served from the cache. The client fills it from the call's wall time where a
    # backend does not measure its own.
    seconds: float | None = None
    logprobs: list[TokenLogprobs] | None = None  # when the request asked and the backend could answer
    # The request's logit_bias could not be applied (a server without a tokenizer): the answer is unsteered, and
    # is not cached under the biased request's key.
    bias_dropped: bool = False

    @field_validator("text")
    @classmethod
    def _encodable(cls, value: str) -> str:
        # An endpoint can send "\ud800" or "\u0000" in its JSON; such text could not be cached, logged or read
        # back from a file, and the finished completion would be lost. U+FFFD marks the spot.
        return _UNSTORABLE.sub("\ufffd", value)


class LLMBackend(ABC):
    """What every backend is: a subclass that sets `name`, `model` and `capabilities` and implements `acomplete`.

    Register it under the entry-point group ``hyperalign.backends`` (plugins.py says how), or with
    `register_backend`. Its constructor takes keyword options — ``model``, ``base_url``, ``api_key`` and its own —
    and must accept and ignore the ones it has no use for (``**_``), so one configuration serves every backend.
    Every method but `acomplete` has a default; override `atokenize` / `count_tokens` only together with the
    capability that says so."""

    name: ClassVar[str]
    model: str
    # Tokens the model can attend to, or None where unknown (then nothing is truncated client-side).
    context_tokens: int | None = None
    capabilities: Capabilities = Capabilities()

    @abstractmethod
    async def acomplete(self, request: CompletionRequest) -> Completion:
        """Answer one chat request. Raise hyperalign's errors (`BackendUnavailableError`, `LLMError`,
        `ContextOverflowError`) for what goes wrong on the way, each with a message written for a person."""

    def identity(self) -> dict[str, Any]:
        """Everything beyond `name` and `model` that changes this backend's answers to the same request (an
        endpoint, a model file's content fingerprint, sampling parameters it adds): part of the completion cache's
        key."""
        return {}

    async def atokenize(self, text: str) -> list[int]:
        """The model's token ids for `text` (capability `tokenize`)."""
        raise NotImplementedError(f"the {self.name} backend does not declare `tokenize`")

    def count_tokens(self, text: str) -> int:
        """The model's number of tokens in `text` (capability `count_tokens`)."""
        raise NotImplementedError(f"the {self.name} backend does not declare `count_tokens`")

    async def aclose(self) -> None:  # noqa: B027 (optional: most backends hold nothing open)
        """Release what the backend holds open (connections); it may not be used afterwards."""

    def complete(self, request: CompletionRequest) -> Completion:
        """The blocking `acomplete`, for scripts and tests: run on the process's LLM loop (loop.py)."""
        return run_sync(self.acomplete(request))


def backend_identity(backend: LLMBackend) -> dict[str, Any]:
    """Everything about a backend that changes its answers to the same request, for the completion cache's key."""
    return {"backend": backend.name, "model": backend.model, **backend.identity()}


def chat_arguments(request: CompletionRequest, messages: list[Message] | None = None,
                   **schema_options: Any) -> dict[str, Any]:
    """The request's OpenAI chat-completions arguments, which llama.cpp takes too: `messages` (the request's unless
    given), max_tokens, temperature, seed, top log-probabilities, and its JSON schema as a `response_format`, whose
    `json_schema` also carries `schema_options`."""
    arguments: dict[str, Any] = {
        "messages": request.messages if messages is None else messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.seed is not None:
        arguments["seed"] = request.seed
    if request.top_logprobs:
        arguments |= {"logprobs": True, "top_logprobs": request.top_logprobs}
    if request.json_schema is not None:
        arguments["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": request.json_schema, **schema_options},
        }
    return arguments


def parse_logprobs(content: Any) -> list[TokenLogprobs] | None:
    """An OpenAI-shaped `choices[0].logprobs.content` (llama.cpp's server answers the same shape) as our type;
    None where the answer carries none (a server that ignores the request)."""
    if not isinstance(content, list) or not content:
        return None
    positions = []
    for entry in content:
        top: dict[str, float] = {}
        for alternative in entry.get("top_logprobs") or []:
            # Two tokens can render alike (e.g. byte-level pieces); keep the likelier.
            token, logprob = alternative["token"], float(alternative["logprob"])
            top[token] = max(logprob, top.get(token, logprob))
        positions.append(TokenLogprobs(token=entry["token"], logprob=float(entry["logprob"]), top=top))
    return positions
