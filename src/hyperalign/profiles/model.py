"""The profile: what hyperalign believes about one user, readable and editable by a person, and the user's example
texts it is inferred from. Every model refuses unknown fields (a misspelt key is an error, not silently dropped);
a profile document is upgraded from an older schema or refused when it comes from a newer one (`migrations`)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from ..errors import InputError, describe_validation_error
from ..io import parse_json_object, read_jsonl_models, read_text_file, write_or_rescue
from ..usage import Usage
from .migrations import CURRENT_SCHEMA_VERSION, SchemaVersionError, upgrade

# Defined apart (types.py), still importable from here.
from .types import (  # noqa: F401
    ASPECT_GUIDANCE,
    MAX_USER_ID,
    Aspect,
    HypothesisId,
    Text,
    UserId,
    WordUse,
    wilson_lower_bound,
)

PROFILE_SCHEMA_VERSION = CURRENT_SCHEMA_VERSION


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserExample(_Strict):
    """One text the user wrote, and the task prompt it answered if known."""

    prompt: Text | None = None
    text: Text

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the example has no text")
        return value


class Evidence(_Strict):
    """A quote backing a hypothesis, and where in the person's texts it was found (verified) or not."""

    quote: Text
    verified: bool = False
    example_index: int | None = Field(
        default=None, ge=0, description="0-based index of the example the quote was found in")
    near_match: Text | None = Field(
        default=None, description="the model's inexact quote, when `quote` is the real sentence it nearly matched")


class Measure(_Strict):
    """What a measured style fact checks: a metric any text can be measured on (pipeline/facts.py), the person's mean
    over their texts, the spread between their texts (never below a floor), and the range the statement shows."""

    metric: Annotated[str, StringConstraints(min_length=1, max_length=400)]
    mean: float
    spread: float = Field(gt=0)
    low: float | None = None
    high: float | None = None
    # Against the contrast (the backbone's default voice, and a reference population where one was given): its mean
    # on the same metric and the person's distinctiveness z = (person - contrast) / pooled spread (pipeline/
    # distinctive.py). None for a fact measured without a contrast (the paper method, or an older profile).
    contrast_mean: float | None = None
    z: float | None = None


class Discrimination(_Strict):
    """Discriminative verification (pipeline/verify.py): on pairs of a text of the person and a contrast text for the
    same task, shown in both orders, which text the hypothesis fits. A pair whose verdict flips with the order, or
    says "same", is undecided. `value` is the Wilson lower bound of "picks the person" among decided pairs. Read by
    probabilities, each pair also gives a lean (log-odds towards the person's text, position and placebo removed)."""

    person: int = Field(0, ge=0)
    contrast: int = Field(0, ge=0)
    undecided: int = Field(0, ge=0)
    value: float = Field(0.0, ge=0.0, le=1.0)
    provisional: bool = Field(False, description="too few texts to reach the bound: kept on every decided pair "
                                                 "picking the person")
    leans: list[float] = Field(default_factory=list, description="per held-out pair: log-odds towards the person's "
                               "text (read by probabilities only)")
    lean_bound: float | None = Field(None, description="one-sided 95% t lower bound of the mean lean; above "
                                     "verify.MIN_LEAN (0.2) keeps")

    @property
    def decided(self) -> int:
        return self.person + self.contrast


class HypothesisScore(_Strict):
    """How held-out texts of the user rated the hypothesis; `value` is the Wilson 95% lower bound of support."""

    supports: int = Field(0, ge=0)
    contradicts: int = Field(0, ge=0)
    neutral: int = Field(0, ge=0)
    value: float = Field(0.0, ge=0.0, le=1.0)

    @property
    def tested(self) -> int:
        return self.supports + self.contradicts + self.neutral


class Hypothesis(_Strict):
    """A readable statement about the person (an aspect: communication strategy, personality, writing style, or
    your own), with the quotes that back it and how it was checked: held-out support (`score`, the paper method)
    or telling the person from the default voice (`discrimination`, the contrastive one)."""

    id: HypothesisId = ""
    aspect: Annotated[Text, Field(min_length=1, max_length=80)]
    statement: Annotated[Text, Field(min_length=1)]
    evidence: list[Evidence] = Field(default_factory=list)
    supported: bool = False
    score: HypothesisScore | None = None
    pinned: bool = False
    # inferred: the LLM's, evidence-checked; person: written or reworded by a person
    origin: Literal["inferred", "person"] = "inferred"
    # Contrastive proposal: what a typical answer does instead ("writes 'I think'"), when the model named it.
    counterpart: Annotated[Text, Field(max_length=240)] | None = None
    discrimination: Discrimination | None = None
    # The id of the measured fact this hypothesis explains (contrastive proposal, given the person's distinctive
    # facts): checked by that measurement (the person against the default voice), not by an LLM's verdict.
    measured_by: HypothesisId | None = None
    # Share of the profiles of a population (a batch, a tenant) holding the same statement: a statistic, no other
    # person's text. At or above the population's threshold the hypothesis is marked generic and ranked last.
    shared_by: float | None = Field(default=None, ge=0.0, le=1.0)
    generic: bool = False

    def model_post_init(self, __context: object) -> None:
        if not self.id:
            digest = hashlib.sha256(f"{self.aspect}\n{self.statement}".encode()).hexdigest()
            self.id = digest[:8]


class Fact(_Strict):
    """A measured style fact: a statement about the person that code computes from their texts, with the metric any
    text can be checked on (pipeline/facts.py; against the default voice, pipeline/distinctive.py). A person may pin
    it or reword its statement (`origin` "person"); its measure stays what the texts say."""

    id: HypothesisId = ""
    statement: Annotated[Text, Field(min_length=1)]
    measure: Measure
    evidence: list[Evidence] = Field(default_factory=list)
    pinned: bool = False
    origin: Literal["measured", "person"] = "measured"

    def model_post_init(self, __context: object) -> None:
        if not self.id:
            self.id = fact_id(self.measure.metric)


def fact_id(metric: str) -> str:
    """A fact's id follows its metric, not its wording: new texts change the numbers, not which fact it is."""
    return "m" + hashlib.sha256(metric.encode()).hexdigest()[:7]


class VoiceSample(_Strict):
    """One sentence of the person's own texts, kept because it carries their habits (function words, markers,
    contractions, punctuation) most against the default voice (pipeline/excerpts.py). Shown to the generator as it
    was written: the person's real words in a few hundred tokens. A person may delete one, never reword it: reworded,
    it would no longer be theirs."""

    id: HypothesisId = ""
    text: Annotated[Text, Field(min_length=1)]
    example_index: int = Field(ge=0, description="the example it was taken from")

    def model_post_init(self, __context: object) -> None:
        if not self.id:
            self.id = "v" + hashlib.sha256(self.text.encode()).hexdigest()[:7]


def said(item: Hypothesis | Fact | VoiceSample) -> str:
    """What a profile item says: a hypothesis's or fact's statement, or a voice sample's sentence."""
    return item.text if isinstance(item, VoiceSample) else item.statement


class ContrastText(_Strict):
    """One default-voice text: the backbone's own zero-shot answer to one of the person's tasks."""

    prompt: Text
    text: Text
    example_index: int = Field(ge=0, description="the person's example whose task it answers")


class Contrast(_Strict):
    """What the person is compared with: the backbone's default voice for their tasks (model output, nobody's
    private text), and the name and size of a reference population's aggregate statistics where one was given."""

    model: Text
    texts: list[ContrastText] = Field(default_factory=list)
    reference: Text | None = Field(default=None, description="the reference corpus's name (aggregates only)")
    reference_texts: int = Field(0, ge=0)
    usage: Usage = Field(default_factory=Usage, description="what the default voice's generations cost")
    seconds: float = Field(0.0, ge=0)


class InferenceReport(_Strict):
    """How the profile came to be: kept with it so a reader can judge it."""

    proposed: int = 0
    dropped_unsupported: int = 0
    dropped_copied: int = Field(0, ge=0, description="proposed statements that copied the input (its markup, or a "
                                "long run of the person's words) instead of describing the person")
    copied_statements: list[str] = Field(default_factory=list, description="those statements, as proposed (schema 7)")
    truncated_examples: list[int] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage, description="every LLM call of the inference, the contrast's included")
    selection: dict[str, int] | None = Field(default=None, description="candidates, scored_on, refine_rounds, selected")
    measured_facts: int = 0
    reasked: int = Field(0, description="hypotheses whose quotes failed and were asked for again")
    recovered: int = Field(0, description="of those, how many the re-ask made supported")
    too_few: bool = Field(False, description="fewer supported hypotheses survived than InferenceOptions.min_hypotheses")
    seconds: float = Field(0.0, ge=0, description="wall time of the inference")
    method: Literal["paper", "contrastive"] = "paper"
    verification: dict[str, float] | None = Field(
        default=None, description="pairs, calls, kept, failed, and the checker's order consistency (contrastive)")
    facts_measured: int = Field(0, ge=0, description="metrics measured before the distinctiveness threshold")
    failed_verification: list[Hypothesis] = Field(
        default_factory=list, description="hypotheses verification dropped, with what it measured (contrastive)")

    def add_counts(self, other: InferenceReport) -> None:
        """Add another inference's hypothesis counts and usage to these (an update's)."""
        self.proposed += other.proposed
        self.dropped_unsupported += other.dropped_unsupported
        self.dropped_copied += other.dropped_copied
        self.copied_statements += other.copied_statements
        self.usage.add(other.usage)


class Profile(_Strict):
    """What hyperalign believes about one person: attributes, hypotheses, measured facts, the contrast they were
    told apart from, and how it all came to be (`report`). A document with a `schema_version`: older ones are
    upgraded on load (`migrations`), newer ones refused."""

    schema_version: int = PROFILE_SCHEMA_VERSION
    user_id: UserId
    attributes: dict[Annotated[Text, StringConstraints(min_length=1, max_length=80)], Text] = Field(default_factory=dict)
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list, description="measured style facts, computed by code")
    examples_hash: str
    n_examples: int = Field(ge=0)
    backend: Text
    model: Text
    prompt_version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    report: InferenceReport = Field(default_factory=InferenceReport)
    contrast: Contrast | None = None
    voice_samples: list[VoiceSample] = Field(
        default_factory=list, description="sentences of the person's own texts that carry their habits, shown to the "
        "generator as written (contrastive inference; none for the paper method)")
    word_use: WordUse | None = Field(
        default=None, description="the person's rates of the genre's common words against the default voice's, by "
        "code: best-of-N's margin (contrastive inference with facts; schema 9)")

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "schema_version" not in data:  # built in Python: the current schema (documents are checked on load)
                return data
            try:
                return upgrade(data)
            except SchemaVersionError as exc:
                raise ValueError(str(exc)) from None
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        seen: set[str] = set()
        for h in self.statements:
            if h.id in seen:
                raise ValueError(f"hypothesis id {h.id} appears twice; every hypothesis and fact needs its own id")
            seen.add(h.id)
            for e in h.evidence:
                if e.example_index is not None and e.example_index >= self.n_examples:
                    raise ValueError(
                        f"hypothesis {h.id}: evidence points to example {e.example_index + 1}, "
                        f"but the profile was inferred from {self.n_examples}")
        for sample in self.voice_samples:
            if sample.id in seen:
                raise ValueError(f"voice sample id {sample.id} appears twice; every sample needs its own id")
            seen.add(sample.id)
            if sample.example_index >= self.n_examples:
                raise ValueError(f"voice sample {sample.id} points to example {sample.example_index + 1}, but the "
                                 f"profile was inferred from {self.n_examples}")
        return self

    @property
    def statements(self) -> list[Hypothesis | Fact]:
        """Everything the profile says of the person, hypotheses and measured facts, each with its own id."""
        return [*self.hypotheses, *self.facts]

    @property
    def supported_hypotheses(self) -> list[Hypothesis]:
        """The hypotheses the generator is shown: the LLM's with a quote found in the texts, and the person's."""
        return [h for h in self.hypotheses if h.supported]

    @property
    def inferred_hypotheses(self) -> list[Hypothesis]:
        """The LLM's supported hypotheses (not the statements a person wrote)."""
        return [h for h in self.hypotheses if h.supported and h.origin == "inferred"]

    @property
    def contrast_texts(self) -> list[str]:
        """The default voice's texts (empty for the paper method)."""
        return [c.text for c in self.contrast.texts] if self.contrast else []

    def to_json(self) -> str:
        """The profile document, indented JSON."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "profile") -> Profile:
        """A profile from JSON text, upgraded from an older schema; an InputError naming `source` otherwise."""
        return cls.from_document(parse_json_object(text, source), source)

    @classmethod
    def from_document(cls, document: dict[str, Any], source: str = "profile") -> Profile:
        """A profile from a parsed document, upgraded from an older schema; an InputError naming `source`."""
        if "schema_version" not in document:
            raise InputError(f"{source}: invalid profile: schema_version is missing (is this a hyperalign profile?)")
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise InputError(f"{source}: invalid profile: {describe_validation_error(exc, cls)}") from None

    @classmethod
    def load(cls, path: Path) -> Profile:
        """A profile file."""
        return cls.from_json(read_text_file(path), source=str(path))

    def save(self, path: Path) -> None:
        """Written atomically; if it cannot be written there, the profile is kept in a rescue file (named)."""
        write_or_rescue(Path(path), self.to_json() + "\n")

    def to_markdown(self) -> str:
        """The profile for a person to read: attributes, hypotheses with their quotes and checks, facts."""
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
                lines.append(f"- **{h.statement}**{flag}{_marks(h)} `[{h.id}]`{_scores(h)}")
                if h.counterpart:
                    lines.append(f"    - a typical answer instead: “{h.counterpart}”")
                lines += _quotes(h.evidence)
            lines.append("")
        if self.facts:
            lines += ["## Measured style (computed from the texts by code)", ""]
            for fact in self.facts:
                lines.append(f"- **{fact.statement}**{_marks(fact)} `[{fact.id}]`")
                lines += _quotes(fact.evidence)
            lines.append("")
        if self.word_use:
            lines += self.word_use.markdown()
        if self.voice_samples:
            lines += ["## In their own words (sentences shown to the generator as written)", ""]
            lines += [f"- > “{v.text}” (example {v.example_index + 1}) `[{v.id}]`" for v in self.voice_samples]
            lines.append("")
        r = self.report
        if r.failed_verification:
            lines += ["## Checked and dropped (did not tell the person from a typical answer)", ""]
            lines += [f"- {h.statement}{_scores(h)}" for h in r.failed_verification]
            lines.append("")
        if r.copied_statements:
            lines += ["## Proposed and dropped (copied the texts instead of describing them)", ""]
            lines += [f"- {statement}" for statement in r.copied_statements]
            lines.append("")
        inferred = len(self.inferred_hypotheses)
        lines.append(
            f"_{inferred} supported hypotheses of {r.proposed} proposed; {r.dropped_unsupported} dropped for lack of "
            f"a verbatim quote; {r.measured_facts} measured style facts._"
        )
        return "\n".join(lines) + "\n"


def _marks(item: Hypothesis | Fact) -> str:
    return (" 📌 pinned" if item.pinned else "") + (" ✎ by a person" if item.origin == "person" else "")


def _scores(h: Hypothesis) -> str:
    score = ""
    if h.score:
        score = (f" — held-out texts: {h.score.supports} support, {h.score.contradicts} contradict, "
                 f"{h.score.neutral} neutral (score {h.score.value:.2f})")
    if h.discrimination:
        d = h.discrimination
        score += (f" — told apart from a typical answer: picked {d.person} times, the typical answer "
                  f"{d.contrast}, undecided {d.undecided} (score {d.value:.2f}"
                  + (f"; mean lean {sum(d.leans) / len(d.leans):+.2f}, bound {d.lean_bound:+.2f}"
                     if d.leans and d.lean_bound is not None else "") + ")")
    if h.measured_by:
        score += f" — checked by measurement: explains fact `[{h.measured_by}]`"
    if h.shared_by is not None:
        score += f" — shared by {h.shared_by:.0%} of profiles" + (" (generic)" if h.generic else "")
    return score


def _quotes(evidence: list[Evidence]) -> list[str]:
    lines = []
    for ev in evidence:
        mark = f"example {ev.example_index + 1}" if ev.verified and ev.example_index is not None else "not found"
        mark += ", near match" if ev.near_match else ""
        lines.append(f"    - > “{ev.quote}” ({mark})")
    return lines


def examples_hash(examples: list[UserExample]) -> str:
    canonical = json.dumps([e.model_dump() for e in examples], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def read_examples(path: Path) -> list[UserExample]:
    """JSONL lines {"prompt"?: str, "text": str}; any other key is refused by name."""
    examples = read_jsonl_models(path, UserExample)
    if not examples:
        raise InputError(f"{path}: holds no examples")
    return examples
