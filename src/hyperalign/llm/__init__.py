"""The LLM layer: one backend protocol, a registry of backends, a completion cache, and the client."""

from ..usage import Usage, track_usage
from .base import (
    Capabilities,
    Completion,
    CompletionRequest,
    LLMBackend,
    Message,
    TextBias,
    TokenLogprobs,
)
from .cache import CompletionCache, default_cache_path
from .client import LLMClient, unbiased_identity
from .registry import backend_names, create_backend, register_backend

__all__ = [
    "Capabilities",
    "Completion",
    "CompletionCache",
    "CompletionRequest",
    "LLMBackend",
    "LLMClient",
    "Message",
    "TextBias",
    "TokenLogprobs",
    "Usage",
    "backend_names",
    "create_backend",
    "default_cache_path",
    "register_backend",
    "track_usage",
    "unbiased_identity",
]
