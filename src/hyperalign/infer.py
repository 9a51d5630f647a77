"""Step 1 and 2 of the method: infer hypotheses and attributes from a user's examples, then check the evidence."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal, Optional

from pydantic import BaseModel, Field, StringConstraints, create_model

from . import evidence
from .errors import InputError
from .llm import Completion, LLMClient
from .profile import ASPECT_GUIDANCE, InferenceReport, Profile, UserExample, examples_hash
from .prompts import render_messages, version_tag

if TYPE_CHECKING:
    from .score import SelectionOptions

log = logging.getLogger(__name__)

# Bounded strings and arrays: with grammar-constrained decoding a small model otherwise loops until max_tokens.
QUOTE_MAX_CHARS = 160
Quote = Annotated[str, StringConstraints(min_length=3, max_length=QUOTE_MAX_CHARS)]
ShortText = Annotated[str, StringConstraints(max_length=60)]

# Rough: English prose runs ~4 characters per token; 3.5 keeps a margin for numbers and names.
CHARS_PER_TOKEN = 3.5
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
PROMPT_OVERHEAD_TOKENS = 400
TRUNCATION_MARK = " […truncated]"


class HypothesisDraft(BaseModel):
    statement: str = Field(min_length=8, max_length=240, description="one concrete, checkable statement")
    evidence: list[Quote] = Field(min_length=1, max_length=3, description="quotes copied word for word")


class HypothesisBatch(BaseModel):
    hypotheses: list[HypothesisDraft] = Field(min_length=1, max_length=5)


class AttributesDraft(BaseModel):
    likely_role: ShortText
    domain: ShortText
    audience: ShortText
    formality: Literal["formal", "neutral", "informal"]


@dataclass
class InferenceOptions:
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
    # Score candidates on held-out examples and keep the best (see score.py). None: the paper's one pass.
    selection: Optional["SelectionOptions"] = None


def fit_examples(
    examples: list[UserExample], context_tokens: int | None, reserve_tokens: int
) -> tuple[list[UserExample], list[int]]:
    """Truncate the longest examples so that all of them fit in the context; return the truncated indices.

    Truncation (with a warning) rather than refusal: a profile from the first few thousand characters of each
    text is still useful, and the caller learns exactly which examples were cut."""
    if context_tokens is None:
        return examples, []
    budget = int((context_tokens - reserve_tokens - PROMPT_OVERHEAD_TOKENS) * CHARS_PER_TOKEN)
    lengths = [len(e.text) + len(e.prompt or "") for e in examples]
    if budget <= 0:
        raise InputError(f"the model's context ({context_tokens} tokens) leaves no room for examples")
    if sum(lengths) <= budget:
        return examples, []
    # Water-filling: the largest per-example cap under which everything fits.
    cap, remaining = budget, budget
    for count, length in enumerate(sorted(lengths), start=0):
        share = remaining // (len(lengths) - count)
        if length > share:
            cap = share
            break
        remaining -= length
    fitted, truncated = [], []
    for index, (example, length) in enumerate(zip(examples, lengths)):
        if length > cap:
            room = max(0, cap - len(TRUNCATION_MARK))
            prompt = (example.prompt or "")[: room // 2] or None  # a huge prompt must not crowd out the text
            keep = room - len(prompt or "")
            fitted.append(example.model_copy(update={"prompt": prompt, "text": example.text[:keep] + TRUNCATION_MARK}))
            truncated.append(index)
        else:
            fitted.append(example)
    return fitted, truncated


def quote_menu(examples: list[UserExample], size: int) -> list[str]:
    """Up to `size` quotable sentences, taken round-robin across examples so every example is represented."""
    per_example = []
    for example in examples:
        sentences = []
        for sentence in _SENTENCE_END.split(example.text):
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


def _batch_schema(menu: list[str]) -> type[HypothesisBatch]:
    if not menu:
        return HypothesisBatch
    choice = Literal[tuple(menu)]  # type: ignore[valid-type]
    draft = create_model(
        "HypothesisDraft", __base__=HypothesisDraft, evidence=(list[choice], Field(min_length=1, max_length=3))
    )
    return create_model(
        "HypothesisBatch", __base__=HypothesisBatch, hypotheses=(list[draft], Field(min_length=1, max_length=5))
    )


def merge_usage(report: InferenceReport, completions: list[Completion]) -> None:
    for completion in completions:
        if completion.cached:
            report.cache_hits += 1
        else:
            report.llm_calls += 1
        report.prompt_tokens += completion.usage.prompt_tokens
        report.completion_tokens += completion.usage.completion_tokens


async def ainfer_profile(
    client: LLMClient,
    user_id: str,
    examples: list[UserExample],
    attributes: dict[str, str] | None = None,
    options: InferenceOptions | None = None,
) -> Profile:
    options = options or InferenceOptions()
    if options.selection is not None:
        from .score import ainfer_selected

        return await ainfer_selected(client, user_id, examples, attributes, options)
    if not examples:
        raise InputError("no examples: hypotheses need at least one text written by the user")
    if not user_id.strip():
        raise InputError("the user id is empty")
    shown, truncated = fit_examples(examples, client.backend.context_tokens, options.max_tokens)
    for index in truncated:
        log.warning("example %d is too long for the model's context and was truncated", index + 1)

    use_menu = options.quote_menu if options.quote_menu is not None else client.backend.name == "embedded"
    batch_schema = _batch_schema(quote_menu(shown, options.quote_menu_size) if use_menu else [])

    async def hypotheses_for(aspect: str, guidance: str) -> tuple[HypothesisBatch, list[Completion]]:
        messages = render_messages(
            "infer_hypotheses",
            examples=shown,
            aspect_label=aspect.replace("_", " "),
            guidance=guidance,
            max_hypotheses=options.max_per_aspect,
        )
        return await client.acomplete_structured(
            messages, batch_schema, step=f"infer_hypotheses[{aspect}]", max_tokens=options.max_tokens
        )

    jobs = [hypotheses_for(aspect, guidance) for aspect, guidance in options.aspects.items()]
    if options.infer_attributes:
        messages = render_messages("infer_attributes", examples=shown)
        jobs.append(client.acomplete_structured(messages, AttributesDraft, step="infer_attributes", max_tokens=200))
    results = await asyncio.gather(*jobs)

    report = InferenceReport(truncated_examples=truncated)
    hypotheses, seen = [], set()
    for aspect, (batch, completions) in zip(options.aspects, results):
        merge_usage(report, completions)
        for draft in batch.hypotheses[: options.max_per_aspect]:
            key = evidence.normalize(draft.statement).lower()
            if key in seen:
                continue
            seen.add(key)
            report.proposed += 1
            hypothesis = evidence.check(aspect, draft.statement, draft.evidence, examples)
            if hypothesis.supported or options.keep_unsupported:
                hypotheses.append(hypothesis)
            elif not hypothesis.supported:
                report.dropped_unsupported += 1

    inferred: dict[str, str] = {}
    if options.infer_attributes:
        drafted, completions = results[-1]
        merge_usage(report, completions)
        inferred = {k: v.strip() for k, v in drafted.model_dump().items() if v and v.strip()}
    steps = ["infer_hypotheses"] + (["infer_attributes"] if options.infer_attributes else [])
    return Profile(
        user_id=user_id,
        attributes={**inferred, **(attributes or {})},  # the caller knows better than the model
        hypotheses=hypotheses,
        examples_hash=examples_hash(examples),
        n_examples=len(examples),
        backend=client.backend.name,
        model=client.model,
        prompt_version=version_tag(*steps),
        report=report,
    )
