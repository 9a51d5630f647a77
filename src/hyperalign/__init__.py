"""hyperalign: hypothesis-driven personalization of LLM outputs (HyPerAlign, arXiv 2505.00038)."""

from .api import HyperAlign
from .errors import (
    BackendUnavailableError,
    ConflictError,
    ContextOverflowError,
    HyperAlignError,
    InputError,
    LLMError,
    StoreError,
    StructuredOutputError,
    TooFewHypothesesError,
)
from .pipeline.deliberate import Deliberation, DeliberationMethod
from .pipeline.generate import Generation, GenerationOptions, Strategy
from .pipeline.infer import InferenceOptions
from .pipeline.selection import SelectionOptions
from .pipeline.update import UpdateOptions
from .profiles.edit import Edits
from .profiles.model import Aspect, Evidence, Fact, Hypothesis, Profile, UserExample, read_examples
from .profiles.store import ProfileStore
from .profiles.update import UpdateResult
from .usage import Usage, track_usage

__all__ = [
    "Aspect",
    "BackendUnavailableError",
    "ConflictError",
    "ContextOverflowError",
    "Deliberation",
    "DeliberationMethod",
    "Edits",
    "Evidence",
    "Fact",
    "Generation",
    "GenerationOptions",
    "HyperAlign",
    "HyperAlignError",
    "Hypothesis",
    "InferenceOptions",
    "InputError",
    "LLMError",
    "Profile",
    "ProfileStore",
    "SelectionOptions",
    "Strategy",
    "StoreError",
    "StructuredOutputError",
    "TooFewHypothesesError",
    "UpdateOptions",
    "UpdateResult",
    "Usage",
    "UserExample",
    "read_examples",
    "track_usage",
]
