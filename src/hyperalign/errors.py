"""Errors a user can act on. The CLI turns every one of them into one line and exit code 2; anything else is a bug
(exit code 1, traceback in a log file)."""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError


def first_error(exc: ValidationError, default: str) -> tuple[str, str]:
    """The first validation problem as (dotted field path, message), for one-line error messages."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or default
    return where, first["msg"].removeprefix("Value error, ")


def describe_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line for the first problem, naming the field. A misspelt key shows up both as "unknown" and as a missing
    required field; the unknown one is the person's typo, so it is the one reported, with the fields allowed."""
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    where = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        allowed = _fields_at(model, first["loc"][:-1]) if model else None
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown field '{where}'{hint}"
    if first["type"] == "missing":
        return f"field '{where}' is missing"
    message = first["msg"].removeprefix("Value error, ")
    return f"field '{where}': {message}" if where else message


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The field names of the (nested) model at `loc`, when it can be followed."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        current = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return None
    return list(getattr(current, "model_fields", {})) or None


class HyperAlignError(Exception):
    """Every error hyperalign raises on purpose; the message is written for a person. `caller_fault` says whose it
    is to fix: the caller's (the input as given cannot be used: fix it, do not retry as is — the service answers
    4xx) or not (the environment, the endpoint or the model: fix the set-up or retry — the service answers 5xx).
    The CLI turns every one into one line and exit code 2; anything else is a bug (exit 1).

    The tree::

        HyperAlignError
        ├── InputError                 the caller's: a file, an example, a profile, a setting, a request
        ├── ConflictError              the caller's: the profile changed since it was read; read it again
        ├── TooFewHypothesesError      the caller's: with `strict`, the texts support too few hypotheses
        ├── StoreError                 the environment's: the profile store or the cache cannot be used
        ├── BackendUnavailableError    the environment's: the LLM endpoint or model file cannot be reached
        └── LLMError                   the model's or endpoint's: it answered with an error
            ├── ContextOverflowError   the caller's: the prompt does not fit the model's context
            └── StructuredOutputError  the model's: its output stayed invalid after the repair turns
    """

    caller_fault: ClassVar[bool] = False


class InputError(HyperAlignError):
    """The caller's data (a file, an example, a profile, a setting, a request) cannot be used as given."""

    caller_fault = True


class ConflictError(HyperAlignError):
    """A stored profile changed between reading it and saving a new version of it: read it again and redo the
    change."""

    caller_fault = True


class TooFewHypothesesError(HyperAlignError):
    """With `strict`, fewer hypotheses survived the evidence check than the profile needs."""

    caller_fault = True


class StoreError(HyperAlignError):
    """The profile store or the completion cache cannot be opened, read or written (not a database, read-only,
    disk full, unreachable server)."""


class BackendUnavailableError(HyperAlignError):
    """The LLM backend cannot be reached or loaded (endpoint down, key refused, model file missing)."""


class LLMError(HyperAlignError):
    """The LLM backend answered with an error."""


class ContextOverflowError(LLMError):
    """A prompt does not fit into the model's context window: fewer or shorter texts."""

    caller_fault = True


class StructuredOutputError(LLMError):
    """The LLM's output did not validate against the step's schema, even after the repair turns."""

    def __init__(self, step: str, detail: str, output: str, repairs: int = 1):
        snippet = output.strip().replace("\n", " ")
        if len(snippet) > 160:
            snippet = snippet[:160] + "…"
        attempts = f"{repairs} repair attempt{'s' if repairs != 1 else ''}"
        super().__init__(
            f"step '{step}': the model's output is not valid after {attempts} ({detail}). "
            f"Output began: {snippet!r}. A stronger model (the backend and model settings) usually fixes this."
        )
        self.step = step
        self.output = output


Choice = TypeVar("Choice", bound=Enum)


def parse_choice(kind: type[Choice], value: Any, what: str) -> Choice:
    """`value` as one of `kind`'s members, or an InputError naming the input and the choices."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in kind)
        raise InputError(f"unknown {what} {value!r}; use one of: {choices}") from None
