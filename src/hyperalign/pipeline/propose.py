"""Step 1 of the method: the LLM proposes hypotheses about the person and simple attributes — by default in one
structured call for every aspect and the attributes (the examples' tokens are sent once), or, as in the paper, one
call per aspect and one for the attributes. A hypothesis whose quotes fail the evidence check can be asked for
again in one more call naming the failed quotes (`fix_evidence`). Every string and array in these schemas is bounded: with grammar-constrained decoding a small
model otherwise repeats one sentence until the token limit. The quote menu offers the examples' own sentences as the
only allowed evidence (a JSON-schema enum), so a weak model can only cite real text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import GenericAlias
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, create_model

from ..llm import LLMClient
from ..profiles.model import UserExample
from ..prompts import render_messages
from ..text import SENTENCE_BOUNDARY
from . import evidence

QUOTE_MAX_CHARS = 160
Quote = Annotated[str, StringConstraints(min_length=3, max_length=QUOTE_MAX_CHARS)]
ShortText = Annotated[str, StringConstraints(max_length=60)]
Statement = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=240)]


class HypothesisDraft(BaseModel):
    statement: Statement = Field(description="one concrete, checkable statement")
    evidence: list[Quote] = Field(min_length=1, max_length=3, description="quotes copied word for word")


# What constrained decoding lets a contrastive statement be (a guide for the grammar, not a validation rule: a strong
# model's "Uses short sentences" is a fine statement). Seen on Qwen2.5-Coder-1.5B: 4 to 7 of the 6 to 9 statements
# a profile proposed were a stretch of the person's text opened with its <user_text> tag, all then dropped as
# copies. Started as a description of the person, without markup or line breaks, they cannot be. Double quotes and
# backslashes are left out so that no grammar engine has to escape them; the length sits in the pattern as well as
# in maxLength because some engines read only one of them.
STATEMENT_PATTERN = r'^The person [^<>\n"\\]{4,200}$'


class DifferenceDraft(HypothesisDraft):
    """A contrastive hypothesis: what the person does, and what a typical answer does instead."""

    statement: Statement = Field(description="one concrete, checkable statement about how the person writes",
                                 json_schema_extra={"pattern": STATEMENT_PATTERN})
    instead: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] = Field(
        "", description="what a typical answer does instead, in a few words")


class MeasuredDraft(DifferenceDraft):
    """A difference code measured (one of the person's distinctive facts, named by its label "M1", "M2", ...),
    stated as a hypothesis about the person, with quotes where the texts show it."""

    measurement: str = Field(description="the label of the measured difference this hypothesis explains")


MEASURED = "measured"  # the proposal's field of hypotheses that explain measured differences


def measurement_labels(count: int) -> list[str]:
    return [f"M{i + 1}" for i in range(count)]


class HypothesisBatch(BaseModel):
    hypotheses: list[HypothesisDraft] = Field(min_length=1, max_length=5)


class AttributesDraft(BaseModel):
    likely_role: ShortText
    domain: ShortText
    audience: ShortText
    formality: Literal["formal", "neutral", "informal"]


def quote_menu(examples: list[UserExample], size: int) -> list[str]:
    """Up to `size` quotable sentences, taken round-robin across examples so every example is represented."""
    per_example = []
    for example in examples:
        sentences = []
        for sentence in SENTENCE_BOUNDARY.split(example.text):
            sentence = " ".join(sentence.split())
            if len(sentence) > QUOTE_MAX_CHARS:
                sentence = sentence[:QUOTE_MAX_CHARS].rsplit(" ", 1)[0]
            if len(sentence) >= evidence.MIN_QUOTE_CHARS:
                sentences.append(sentence)
        per_example.append(sentences)
    menu: dict[str, None] = {}
    for rank in range(max((len(s) for s in per_example), default=0)):
        for sentences in per_example:
            if rank < len(sentences) and len(menu) < size:
                menu[sentences[rank]] = None
    return list(menu)


# Schemas built at run time (the quote menu is this user's sentences), so typed as Any for the type checker.
_create_model: Any = create_model


def _list_of(item: Any) -> Any:
    return GenericAlias(list, (item,))


def _quote_type(menu: list[str]) -> Any:
    """The sentences of this user's examples, the only quotes the grammar allows; any short text without a menu."""
    return Literal.__getitem__(tuple(menu)) if menu else Quote


def _draft(menu: list[str], base: type[HypothesisDraft] = HypothesisDraft) -> Any:
    if not menu:
        return base
    return _create_model(base.__name__, __base__=base,
                         evidence=(_list_of(_quote_type(menu)), Field(min_length=1, max_length=3)))


def batch_schema(menu: list[str]) -> type[HypothesisBatch]:
    if not menu:
        return HypothesisBatch
    return _create_model(
        "HypothesisBatch", __base__=HypothesisBatch,
        hypotheses=(_list_of(_draft(menu)), Field(min_length=1, max_length=5)))


def min_per_aspect(max_per_aspect: int) -> int:
    return min(2, max_per_aspect)


def profile_schema(aspects: list[str], max_per_aspect: int, menu: list[str], attributes: bool,
                   base: type[HypothesisDraft] = HypothesisDraft, measurements: Sequence[str] = ()) -> type[BaseModel]:
    """One object: a list of hypotheses per aspect (one field each, so none is skipped), and the attributes.

    The schema asks for at least two per aspect (when the maximum allows): asked for every aspect at once, a small
    model under constrained decoding otherwise stops at one each, where a call per aspect got two or three
    (benchmarks/results/inference-cost-*.md). The validator accepts one: a model that finds one habit of an aspect
    has not failed, and a repair turn for it would cost more than it adds."""
    least = min_per_aspect(max_per_aspect)
    fields: dict[str, Any] = {
        aspect: (_list_of(_draft(menu, base)), Field(min_length=1, max_length=max_per_aspect,
                                               json_schema_extra={"minItems": least}))
        for aspect in aspects}
    if measurements:
        labels: Any = Literal.__getitem__(tuple(measurements))
        draft = _create_model("MeasuredDraft", __base__=_draft(menu, MeasuredDraft), measurement=(labels, ...))
        # The grammar asks for two; the validator accepts none: a model that explains no measurement has not
        # failed (the aspects' hypotheses still stand), and a repair turn would cost more than it adds.
        fields[MEASURED] = (_list_of(draft), Field(max_length=len(measurements),
                                                  json_schema_extra={"minItems": min(2, len(measurements))}))
    if attributes:
        fields["attributes"] = (AttributesDraft, ...)
    return _create_model("ProfileProposal", **fields)


Drafts = dict[str, list[HypothesisDraft]]


async def propose_profile(
    client: LLMClient, shown: list[UserExample], aspects: dict[str, str], *, menu: list[str], max_per_aspect: int,
    attributes: bool, max_tokens: int,
) -> tuple[Drafts, AttributesDraft | None]:
    """Every aspect's hypotheses and the attributes in one structured call."""
    schema = profile_schema(list(aspects), max_per_aspect, menu, attributes)
    return await _propose(client, "infer_profile", "infer_profile", schema, aspects, max_tokens, examples=shown,
                          max_per_aspect=max_per_aspect, attributes=attributes)


async def propose_differences(
    client: LLMClient, pairs: list[dict[str, str]], aspects: dict[str, str], *, menu: list[str],
    max_per_aspect: int, attributes: bool, max_tokens: int, measurements: Mapping[str, str] | None = None,
) -> tuple[Drafts, AttributesDraft | None]:
    """Contrastive proposal: the person's texts beside the default voice's for the same tasks; each hypothesis is a
    difference, quoted from the person's texts, with what a typical answer does instead. One call for the given
    aspects (call it once per aspect for the paper's per-aspect shape: the pairs are a shared prefix). Given the
    differences code measured (label -> what was measured, the caller's labels), the call also states them as
    hypotheses about the person, each naming the label it explains (drafts under MEASURED)."""
    measurements = measurements or {}
    schema = profile_schema(list(aspects), max_per_aspect, menu, attributes, base=DifferenceDraft,
                            measurements=list(measurements))
    step = "infer_differences" if len(aspects) != 1 else f"infer_differences[{next(iter(aspects))}]"
    return await _propose(client, "infer_differences", step, schema, aspects, max_tokens, pairs=pairs,
                          max_per_aspect=max_per_aspect, attributes=attributes, measurements=measurements,
                          more_fields=(MEASURED,) if measurements else ())


async def _propose(client: LLMClient, template: str, step: str, schema: type[BaseModel], aspects: dict[str, str],
                   max_tokens: int, *, max_per_aspect: int, attributes: bool, more_fields: Sequence[str] = (),
                   **texts: Any) -> tuple[Drafts, AttributesDraft | None]:
    messages = render_messages(template, **texts, aspects=aspects, max_hypotheses=max_per_aspect,
                               min_hypotheses=min_per_aspect(max_per_aspect), attributes=attributes)
    proposal = await client.acomplete_structured(messages, schema, step=step, max_tokens=max_tokens)
    drafts = {name: list(getattr(proposal, name)) for name in [*aspects, *more_fields]}
    return drafts, getattr(proposal, "attributes", None)


class FailedEvidence(BaseModel):
    statement: str
    quotes: list[str]


async def fix_evidence(
    client: LLMClient, shown: list[UserExample], failed: list[FailedEvidence], *, menu: list[str], max_tokens: int,
) -> list[list[str]]:
    """Ask once more for word-for-word quotes of hypotheses whose quotes were not found; one list per hypothesis."""
    quotes = _list_of(_quote_type(menu))
    schema = _create_model("EvidenceFixes", **{f"h{i + 1}": (quotes, Field(max_length=3)) for i in range(len(failed))})
    messages = render_messages("fix_evidence", examples=shown, failed=failed)
    fixes = await client.acomplete_structured(messages, schema, step="fix_evidence", max_tokens=max_tokens)
    return [list(getattr(fixes, f"h{i + 1}")) for i in range(len(failed))]



async def propose_hypotheses(
    client: LLMClient, shown: list[UserExample], aspect: str, guidance: str, *, schema: type[HypothesisBatch],
    max_hypotheses: int, max_tokens: int,
) -> HypothesisBatch:
    messages = render_messages(
        "infer_hypotheses", examples=shown, aspect_label=aspect.replace("_", " "), guidance=guidance,
        max_hypotheses=max_hypotheses,
    )
    return await client.acomplete_structured(messages, schema, step=f"infer_hypotheses[{aspect}]", max_tokens=max_tokens)


async def propose_attributes(client: LLMClient, shown: list[UserExample]) -> AttributesDraft:
    messages = render_messages("infer_attributes", examples=shown)
    return await client.acomplete_structured(messages, AttributesDraft, step="infer_attributes", max_tokens=200)
