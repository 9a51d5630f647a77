"""How a profile is inferred: the options every inference path reads (infer.py, contrastive.py), validated where
they are made and passed per call."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..profiles.model import ASPECT_GUIDANCE, Contrast
from .reference import ReferenceStats
from .selection import SelectionOptions
from .verify import ONE_SIDED_95


class InferenceOptions(BaseModel):
    """How a profile is inferred (`HyperAlign.infer_profile(..., options=...)`); every field has its default."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    method: Literal["contrastive", "paper"] = Field(
        "contrastive", description="contrastive: hypotheses are the person's differences from the backbone's default "
        "voice for the same tasks, kept only when a check tells the person's text from the default's with them, and "
        "measured facts only where the person stands apart (contrastive.py); paper: HyPerAlign's one pass (Garbacea "
        "& Tan), hypotheses kept when their quotes are found, raw measured facts — one flag away, for comparison")
    aspects: dict[str, str] = Field(default_factory=lambda: dict(ASPECT_GUIDANCE),
                                    description="aspect -> what its hypotheses describe; add your own")
    max_per_aspect: int = Field(4, ge=1, le=20, description="hypotheses proposed per aspect at most")
    keep_unsupported: bool = Field(False, description="keep hypotheses whose quotes are not found, flagged (never "
                                   "shown to the generator)")
    infer_attributes: bool = Field(True, description="infer role, domain, audience and formality")
    max_tokens: int = Field(900, ge=64, description="tokens for one aspect's proposal")
    quote_menu: bool | None = Field(
        None, description="offer the examples' own sentences as the only allowed evidence (a JSON-schema enum): with "
        "constrained decoding a weak model can only cite real text. None: on where the backend decodes by schema")
    quote_menu_size: int = Field(150, ge=1, le=2000, description="sentences in the quote menu at most")
    selection: SelectionOptions | None = Field(None, description="score candidates on held-out examples and keep "
                                               "the best (selection.py): the paper method's add-on")
    style_facts: bool = Field(True, description="add the measured style facts (facts.py): code, no LLM call")
    language: str = Field("en", description="the texts' language, for word frequencies")
    proposal: Literal["single", "per-aspect"] | None = Field(
        None, description="single: one structured call for every aspect and the attributes (the examples sent once); "
        "per-aspect: the paper's call per aspect plus one for the attributes. None: per-aspect where the backend "
        "caches the shared prompt prefix (its small default model fills one multi-aspect schema with fewer "
        "hypotheses), single elsewhere (an API bills every prompt token again)")
    reask: bool = Field(True, description="ask once more for the quotes of hypotheses whose quotes were not found")
    min_hypotheses: int = Field(3, ge=0, description="fewer supported hypotheses: report.too_few and a warning")
    strict: bool = Field(False, description="fewer than min_hypotheses is an error")
    genre_task: str | None = Field(None, description="contrastive: the task a prompt-less text's default voice "
                                   "answers (None: one built from its opening and length)")
    contrast_max_tokens: int = Field(700, ge=16, description="contrastive: the default voice's longest answer")
    reference: ReferenceStats | None = Field(None, description="contrastive: a reference population's aggregates "
                                             "(contrast.py), never its texts")
    contrast: Contrast | None = Field(None, description="contrastive: a default voice computed before (a stored "
                                      "profile's): its answers are reused for the tasks it answered with the same "
                                      "model, the others generated")
    min_fact_z: float = Field(1.0, ge=0, description="contrastive: keep a fact where |z| against the contrast "
                              "reaches this (1.0: the person's mean a pooled spread away)")
    measured_hypotheses: int = Field(6, ge=0, le=12, description="contrastive: the proposal also states the N most "
                                     "distinctive measured facts as hypotheses, each checked by its measurement "
                                     "rather than by the LLM (0: none)")
    voice_samples: int = Field(8, ge=0, le=24, description="contrastive: keep the N sentences of the person's texts "
                               "that carry their habits most against the default voice (excerpts.py); the generator "
                               "is shown them as written. 0: none")
    verify_pairs: int = Field(5, ge=1, le=50, description="contrastive verification: pairs at most (two calls each)")
    verification: Literal["pairwise", "pointwise"] = Field(
        "pairwise", description="contrastive verification with log-probabilities: pairwise shows a pair in both "
        "orders; pointwise reads each text alone with each statement (verify.py). Without log-probabilities, pairwise")
    verify_z: float = Field(ONE_SIDED_95, gt=0, description="the Wilson bound's z")
    min_discrimination: float = Field(0.5, ge=0, le=1, description="the bound a kept hypothesis must beat")
