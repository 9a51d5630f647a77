"""The extension point for LLM backends: one entry per backend, no if/elif chain.

A third-party package adds a backend by exposing a class that follows `LLMBackend` under the entry-point
group ``hyperalign.backends`` (name = backend name), or by calling `register_backend` at import time.
A backend's constructor takes keyword options: ``model``, ``base_url``, ``api_key`` and its own extras;
it must accept and ignore options it has no use for (``**_``) so one config serves every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from ..errors import InputError
from .base import LLMBackend

ENTRY_POINT_GROUP = "hyperalign.backends"

# Built-ins are imported lazily so that, e.g., the fake backend never loads llama.cpp.
_BUILTIN: dict[str, str] = {
    "openai": "hyperalign.llm.openai:OpenAIBackend",
    "embedded": "hyperalign.llm.embedded:EmbeddedBackend",
    "fake": "hyperalign.llm.fake:FakeBackend",
}
_REGISTERED: dict[str, Callable[..., LLMBackend]] = {}


def register_backend(name: str, factory: Callable[..., LLMBackend]) -> None:
    _REGISTERED[name] = factory


def backend_names() -> list[str]:
    plugins = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(_BUILTIN) | set(_REGISTERED) | plugins)


def _resolve(name: str) -> Callable[..., LLMBackend]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        module, attr = _BUILTIN[name].split(":")
        return getattr(import_module(module), attr)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    raise InputError(f"unknown backend '{name}'; available: {', '.join(backend_names())}")


def create_backend(name: str, **options: Any) -> LLMBackend:
    return _resolve(name)(**{k: v for k, v in options.items() if v is not None})
