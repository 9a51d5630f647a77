"""The profile: what hyperalign believes about one user, readable and editable by a person."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from .errors import InputError, first_error

PROFILE_SCHEMA_VERSION = 1


class Aspect(StrEnum):
    """The aspects of a person the paper's hypotheses describe. Callers may add their own (any string)."""

    COMMUNICATION_STRATEGY = "communication_strategy"
    PERSONALITY = "personality"
    WRITING_STYLE = "writing_style"


ASPECT_GUIDANCE: dict[str, str] = {
    Aspect.COMMUNICATION_STRATEGY: "how the person structures and argues: openings, ordering of information, "
    "use of sources or quotations, persuasion, how they address the reader",
    Aspect.PERSONALITY: "the attitudes and temperament the texts show: confidence, humour, skepticism, "
    "warmth, formality, what the person cares about",
    Aspect.WRITING_STYLE: "surface style: sentence length, paragraphing, punctuation, capitalization, "
    "vocabulary and recurring phrases, tense and person",
}


class UserExample(BaseModel):
    """One text the user wrote, and the task prompt it answered if known."""

    prompt: str | None = None
    text: str

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the example has no text")
        return value


class Evidence(BaseModel):
    quote: str
    verified: bool = False
    example_index: int | None = Field(default=None, description="0-based index of the example the quote was found in")


class HypothesisScore(BaseModel):
    """How held-out texts of the user rated the hypothesis; `value` is the Wilson 95% lower bound of support."""

    supports: int = 0
    contradicts: int = 0
    neutral: int = 0
    value: float = 0.0

    @property
    def tested(self) -> int:
        return self.supports + self.contradicts + self.neutral


class Hypothesis(BaseModel):
    id: str = ""
    aspect: str
    statement: str
    evidence: list[Evidence] = Field(default_factory=list)
    supported: bool = False
    score: HypothesisScore | None = None
    pinned: bool = False
    origin: Literal["inferred", "person"] = "inferred"

    def model_post_init(self, __context: object) -> None:
        if not self.id:
            digest = hashlib.sha256(f"{self.aspect}\n{self.statement}".encode()).hexdigest()
            self.id = digest[:8]


class InferenceReport(BaseModel):
    """How the profile came to be: kept with it so a reader can judge it."""

    proposed: int = 0
    dropped_unsupported: int = 0
    truncated_examples: list[int] = Field(default_factory=list)
    llm_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    selection: dict[str, int] | None = Field(default=None, description="candidates, scored_on, refine_rounds, selected")

    def add_counts(self, other: InferenceReport) -> None:
        """Add another inference's hypothesis, call and token counts to these (e.g. a refinement's or an update's)."""
        for name in ("proposed", "dropped_unsupported", "llm_calls", "cache_hits", "prompt_tokens", "completion_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Profile(BaseModel):
    schema_version: int = PROFILE_SCHEMA_VERSION
    user_id: str
    attributes: dict[str, str] = Field(default_factory=dict)
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    examples_hash: str
    n_examples: int
    backend: str
    model: str
    prompt_version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    report: InferenceReport = Field(default_factory=InferenceReport)

    @property
    def supported_hypotheses(self) -> list[Hypothesis]:
        return [h for h in self.hypotheses if h.supported]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "profile") -> Profile:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            where, message = first_error(exc, "(top level)")
            raise InputError(f"{source}: invalid profile at field '{where}': {message}") from None

    @classmethod
    def load(cls, path: Path) -> Profile:
        from .examples import read_text_file

        return cls.from_json(read_text_file(path), source=str(path))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)

    def to_markdown(self) -> str:
        lines = [f"# Profile of {self.user_id}", ""]
        lines.append(
            f"_Inferred from {self.n_examples} examples by {self.backend}:{self.model} "
            f"(prompts {self.prompt_version}) on {self.created_at:%Y-%m-%d %H:%M} UTC._"
        )
        lines.append("")
        if self.attributes:
            lines += ["## Attributes", ""]
            lines += [f"- **{key}**: {value}" for key, value in self.attributes.items()]
            lines.append("")
        by_aspect: dict[str, list[Hypothesis]] = {}
        for hypothesis in self.hypotheses:
            by_aspect.setdefault(hypothesis.aspect, []).append(hypothesis)
        for aspect, hypotheses in by_aspect.items():
            lines += [f"## {aspect.replace('_', ' ').capitalize()}", ""]
            for h in hypotheses:
                flag = "" if h.supported else " _(unsupported: no quote found in the examples)_"
                marks = (" 📌 pinned" if h.pinned else "") + (" ✎ by a person" if h.origin == "person" else "")
                score = ""
                if h.score:
                    score = (f" — held-out texts: {h.score.supports} support, {h.score.contradicts} contradict, "
                             f"{h.score.neutral} neutral (score {h.score.value:.2f})")
                lines.append(f"- **{h.statement}**{flag}{marks} `[{h.id}]`{score}")
                for ev in h.evidence:
                    mark = f"example {ev.example_index + 1}" if ev.verified and ev.example_index is not None else "not found"
                    lines.append(f"    - > “{ev.quote}” ({mark})")
            lines.append("")
        r = self.report
        lines.append(
            f"_{len(self.supported_hypotheses)} supported hypotheses of {r.proposed} proposed; "
            f"{r.dropped_unsupported} dropped for lack of a verbatim quote._"
        )
        return "\n".join(lines) + "\n"


def examples_hash(examples: list[UserExample]) -> str:
    canonical = json.dumps([e.model_dump() for e in examples], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
