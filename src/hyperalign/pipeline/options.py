"""How a profile is inferred: the options every inference path reads (infer.py, contrastive.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from ..profiles.model import ASPECT_GUIDANCE
from .contrast import ReferenceStats
from .selection import SelectionOptions
from .verify import ONE_SIDED_95


@dataclass
class InferenceOptions:
    # "contrastive" (the default): hypotheses are proposed as the person's differences from the backbone's default
    # voice for the same tasks and kept only when a check tells the person's text from the default's with them;
    # measured facts are kept only where the person stands apart (contrastive.py). "paper": HyPerAlign's one pass
    # (Garbacea & Tan), hypotheses kept when their quotes are found, raw measured facts — one flag away, for
    # comparison.
    method: Literal["contrastive", "paper"] = "contrastive"
    aspects: dict[str, str] = field(default_factory=lambda: dict(ASPECT_GUIDANCE))
    max_per_aspect: int = 4
    keep_unsupported: bool = False
    infer_attributes: bool = True
    max_tokens: int = 900
    # Offer the examples' own sentences as the only allowed evidence (a JSON-schema enum). With grammar-constrained
    # decoding a weak model can then only cite real text; the evidence check runs either way. None = on for the
    # embedded backend, whose small default model invents quotes otherwise; off elsewhere (it costs schema tokens).
    quote_menu: Optional[bool] = None
    quote_menu_size: int = 150
    # Score candidates on held-out examples and keep the best (see selection.py); the paper method's add-on.
    selection: Optional[SelectionOptions] = None
    # Add the measured style facts (facts.py): computed by code from all the examples, no LLM call.
    style_facts: bool = True
    language: str = "en"
    # "single": one structured call for every aspect and the attributes (the examples are sent once); "per-aspect":
    # the paper's call per aspect plus one for the attributes (each carrying all the examples). None: per-aspect where
    # the backend caches the shared prompt prefix (the embedded one: the repeated examples cost little, and its small
    # default model fills one multi-aspect schema with 2-3 hypotheses against 4-7 from per-aspect calls, for 14% more
    # wall time, benchmarks/results/inference-cost-*.md), single elsewhere (an API bills every prompt token again).
    proposal: Optional[Literal["single", "per-aspect"]] = None
    # Hypotheses whose quotes are not found are asked for once more, with the failed quotes named.
    reask: bool = True
    # Fewer supported hypotheses than this: report.too_few, a warning, and with `strict` an error.
    min_hypotheses: int = 3
    strict: bool = False
    # The contrastive method. The task a prompt-less text's default voice answers (None: one built from its opening
    # and length); the default voice's longest answer; a reference population's aggregates (contrast.py).
    genre_task: Optional[str] = None
    contrast_max_tokens: int = 700
    reference: Optional[ReferenceStats] = None
    # Facts are kept where |z| against the contrast reaches this (1.0: the person's mean a pooled spread away).
    min_fact_z: float = 1.0
    # Verification (verify.py): at most this many pairs (two calls each), the Wilson bound's z, the bound to beat.
    verify_pairs: int = 5
    verify_z: float = ONE_SIDED_95
    min_discrimination: float = 0.5
