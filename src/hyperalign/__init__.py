"""hyperalign: hypothesis-driven personalization of LLM outputs (HyPerAlign, arXiv 2505.00038)."""

from .api import HyperAlign
from .errors import HyperAlignError, InputError
from .pipeline.generate import Generation, GenerationOptions, Strategy
from .pipeline.infer import InferenceOptions
from .profiles.model import Aspect, Evidence, Hypothesis, Profile, UserExample

__all__ = [
    "Aspect",
    "Evidence",
    "Generation",
    "GenerationOptions",
    "HyperAlign",
    "HyperAlignError",
    "Hypothesis",
    "InferenceOptions",
    "InputError",
    "Profile",
    "Strategy",
    "UserExample",
]
