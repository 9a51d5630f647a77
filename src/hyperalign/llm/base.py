"""The backend protocol: chat messages in; text, token usage and finish reason out."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Message = dict[str, str]


class CompletionRequest(BaseModel):
    messages: list[Message]
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = 0
    json_schema: dict[str, Any] | None = Field(default=None, description="constrain the output to this JSON schema")
    schema_name: str = "output"

    def cache_key(self, backend: str, model: str) -> str:
        payload = json.dumps(
            {"backend": backend, "model": model, **self.model_dump()}, sort_keys=True, ensure_ascii=False
        )
        return hashlib.sha256(payload.encode()).hexdigest()


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Completion(BaseModel):
    text: str
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    cached: bool = False


@runtime_checkable
class LLMBackend(Protocol):
    """What every backend provides. Register new ones in `hyperalign.llm.registry`."""

    name: ClassVar[str]
    model: str
    # Tokens the model can attend to, or None where unknown (then nothing is truncated client-side).
    context_tokens: int | None

    def complete(self, request: CompletionRequest) -> Completion: ...

    async def acomplete(self, request: CompletionRequest) -> Completion: ...
