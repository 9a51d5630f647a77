"""Errors a user can act on. The CLI turns every one of them into one message and exit code 2."""


from pydantic import ValidationError


def first_error(exc: ValidationError, default: str) -> tuple[str, str]:
    """The first validation problem as (dotted field path, message), for one-line error messages."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or default
    return where, first["msg"].removeprefix("Value error, ")


class HyperAlignError(Exception):
    """Base class: the message is written for the person running the command."""


class InputError(HyperAlignError):
    """The caller's data (a file, an example, a profile) cannot be used as given."""


class BackendUnavailableError(HyperAlignError):
    """The LLM backend cannot be reached or loaded (endpoint down, model file missing)."""


class LLMError(HyperAlignError):
    """The LLM backend answered with an error."""


class ContextOverflowError(LLMError):
    """A prompt does not fit into the model's context window."""


class StructuredOutputError(LLMError):
    """The LLM's output did not validate against the step's schema, even after the repair retry."""

    def __init__(self, step: str, detail: str, output: str):
        snippet = output.strip().replace("\n", " ")
        if len(snippet) > 160:
            snippet = snippet[:160] + "…"
        super().__init__(
            f"step '{step}': the model's output is not valid after one repair attempt ({detail}). "
            f"Output began: {snippet!r}. A stronger model (--backend openai, or --model PATH.gguf) usually fixes this."
        )
        self.step = step
        self.output = output


class ConflictError(HyperAlignError):
    """A stored profile changed between reading it and saving a new version of it."""
