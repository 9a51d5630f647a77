"""The LLM layer: one backend protocol, a registry of backends, a completion cache, and the client."""

from .base import (
    Capabilities,
    Completion,
    CompletionRequest,
    LLMBackend,
    Message,
    TextBias,
    TokenLogprobs,
    Usage,
    backend_seconds,
)
from .cache import CompletionCache, default_cache_path
from .client import LLMClient, RunStats, unbiased_identity
from .registry import backend_names, create_backend, register_backend

__all__ = [
    "Capabilities",
    "Completion",
    "CompletionCache",
    "CompletionRequest",
    "LLMBackend",
    "LLMClient",
    "Message",
    "RunStats",
    "TextBias",
    "TokenLogprobs",
    "Usage",
    "backend_names",
    "backend_seconds",
    "create_backend",
    "default_cache_path",
    "register_backend",
    "unbiased_identity",
]
