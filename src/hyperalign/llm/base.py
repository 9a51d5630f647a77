"""The backend protocol: chat messages in; text, token usage and finish reason out."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, Field, field_validator

Message = dict[str, str]
_UNSTORABLE = re.compile(r"[\ud800-\udfff\x00]")


class CompletionRequest(BaseModel):
    messages: list[Message]
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = 0
    json_schema: dict[str, Any] | None = Field(default=None, description="constrain the output to this JSON schema")
    schema_name: str = "output"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Completion(BaseModel):
    text: str
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    cached: bool = False
    # Time the backend spent on this call, without the wait for a free slot (so concurrent jobs are not charged
    # for each other); None when served from the cache. The client fills it from the call's wall time where a
    # backend does not measure its own.
    seconds: float | None = None

    @field_validator("text")
    @classmethod
    def _encodable(cls, value: str) -> str:
        # An endpoint can send "\ud800" or "\u0000" in its JSON; such text could not be cached, logged or read
        # back from a file, and the finished completion would be lost. U+FFFD marks the spot.
        return _UNSTORABLE.sub("\ufffd", value)


def backend_seconds(completions: list[Completion]) -> float | None:
    """The backend time of a job's calls; None when every one came from the cache (nothing was measured)."""
    measured = [c.seconds for c in completions if c.seconds is not None]
    return round(sum(measured), 3) if measured else None


@runtime_checkable
class LLMBackend(Protocol):
    """What every backend provides. Register new ones in `hyperalign.llm.registry`."""

    name: ClassVar[str]
    model: str
    # Tokens the model can attend to, or None where unknown (then nothing is truncated client-side).
    context_tokens: int | None

    def complete(self, request: CompletionRequest) -> Completion: ...

    async def acomplete(self, request: CompletionRequest) -> Completion: ...


def backend_identity(backend: LLMBackend) -> dict[str, Any]:
    """Everything about a backend that changes its answers to the same request, for the completion cache's key:
    a backend's own `identity()` (endpoint, the model file's content fingerprint, sampling parameters it adds), or,
    for a plugin without one, its name and model."""
    identity = getattr(backend, "identity", None)
    described = identity() if callable(identity) else {}
    return {"backend": backend.name, "model": backend.model, **described}
