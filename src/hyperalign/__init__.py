"""hyperalign: hypothesis-driven personalization of LLM outputs (HyPerAlign, arXiv 2505.00038)."""

from .api import HyperAlign
from .errors import ConflictError, HyperAlignError, InputError, StoreError
from .pipeline.deliberate import Deliberation, DeliberationMethod
from .pipeline.generate import Generation, GenerationOptions, Strategy
from .pipeline.infer import InferenceOptions
from .pipeline.selection import SelectionOptions
from .profiles.edit import Edits
from .profiles.model import Aspect, Evidence, Hypothesis, Profile, UserExample, read_examples
from .profiles.store import ProfileStore
from .profiles.update import UpdateOptions, UpdateResult

__all__ = [
    "Aspect",
    "ConflictError",
    "Deliberation",
    "DeliberationMethod",
    "Edits",
    "Evidence",
    "Generation",
    "GenerationOptions",
    "HyperAlign",
    "HyperAlignError",
    "Hypothesis",
    "InferenceOptions",
    "InputError",
    "Profile",
    "ProfileStore",
    "SelectionOptions",
    "Strategy",
    "StoreError",
    "UpdateOptions",
    "UpdateResult",
    "UserExample",
    "read_examples",
]
