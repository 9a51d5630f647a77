"""The backends by name: the built-ins, plugins (entry-point group ``hyperalign.backends``, see plugins.py), and
backends registered at run time with `register_backend`. One entry per backend, no if/elif chain."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from ..errors import InputError
from ..plugins import BACKENDS, plugins
from .base import LLMBackend

# Built-ins are imported lazily so that, e.g., the fake backend never loads llama.cpp.
_BUILTIN: dict[str, str] = {
    "openai": "hyperalign.llm.openai:OpenAIBackend",
    "embedded": "hyperalign.llm.embedded:EmbeddedBackend",
    "fake": "hyperalign.llm.fake:FakeBackend",
}
_REGISTERED: dict[str, Callable[..., LLMBackend]] = {}


def register_backend(name: str, factory: Callable[..., LLMBackend]) -> None:
    """Make `factory` (a backend class, or a function taking its keyword options) available as `name`."""
    _REGISTERED[name] = factory


def backend_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED) | set(plugins(BACKENDS)))


def _resolve(name: str) -> Callable[..., LLMBackend]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        module, attr = _BUILTIN[name].split(":")
        factory: Callable[..., LLMBackend] = getattr(import_module(module), attr)
        return factory
    entry = plugins(BACKENDS).get(name)
    if entry is None:
        raise InputError(f"unknown backend '{name}'; available: {', '.join(backend_names())}")
    try:
        loaded = entry.load()
    except Exception as exc:  # a broken plugin is the installation's fault, named as such
        raise InputError(f"the backend plugin '{name}' ({entry.value}) cannot be loaded: {exc}") from None
    if not (isinstance(loaded, type) and issubclass(loaded, LLMBackend)):
        raise InputError(f"the backend plugin '{name}' ({entry.value}) is not a subclass of hyperalign's LLMBackend")
    return loaded


def create_backend(name: str, **options: Any) -> LLMBackend:
    """The backend `name`, made with these keyword options (None values left out, so backends keep defaults)."""
    return _resolve(name)(**{k: v for k, v in options.items() if v is not None})
