"""Inference, the method's first half: propose hypotheses and attributes (`propose`), keep those whose quotes the
examples really contain (`evidence`), and — beyond the paper's one pass — optionally score them on held-out texts,
select within a budget and refine (`selection`). Returns an evidence-checked `Profile`."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Literal, Optional

from ..errors import InputError, StructuredOutputError, TooFewHypothesesError
from ..io import check_name
from ..llm import Completion, LLMClient
from ..profiles.model import (
    ASPECT_GUIDANCE,
    Hypothesis,
    InferenceReport,
    Profile,
    UserExample,
    examples_hash,
)
from ..prompts import version_tag
from . import evidence
from .context import fit_examples
from .facts import style_facts
from .propose import (
    AttributesDraft,
    FailedEvidence,
    HypothesisDraft,
    batch_schema,
    fix_evidence,
    propose_attributes,
    propose_hypotheses,
    propose_profile,
    quote_menu,
)
from .selection import (
    SelectionOptions,
    rate_on_text,
    score_hypotheses,
    select,
    worst_described,
)

log = logging.getLogger(__name__)


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
    # Score candidates on held-out examples and keep the best (see selection.py). None: the paper's one pass.
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


async def _nothing() -> None:
    return None


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
    check_name(user_id, "the user id")
    if not examples:
        raise InputError("no examples: hypotheses need at least one text written by the user")
    started = time.perf_counter()
    if options.selection is not None:
        profile = await ainfer_selected(client, user_id, examples, attributes, options)
    else:
        profile = await ainfer_one_pass(client, user_id, examples, attributes, options)
    facts = style_facts([e.text for e in examples], language=options.language) if options.style_facts else []
    report = profile.report.model_copy(update={"measured_facts": len(facts),
                                               "seconds": round(time.perf_counter() - started, 2)})
    return profile.model_copy(update={"hypotheses": [*profile.hypotheses, *facts], "report": report})


async def ainfer_one_pass(
    client: LLMClient,
    user_id: str,
    examples: list[UserExample],
    attributes: dict[str, str] | None,
    options: InferenceOptions,
) -> Profile:
    """Propose (one call for everything, or the paper's call per aspect), check the evidence, ask once more for the
    quotes that failed, and say so when too few hypotheses survive."""
    single = proposal_kind(client, options) == "single"
    budget = options.max_tokens * len(options.aspects) if single else options.max_tokens
    if client.backend.context_tokens:  # the one answer's share of a small context
        budget = min(budget, max(options.max_tokens, client.backend.context_tokens // 3))
    shown, truncated = fit_examples(examples, client.backend.context_tokens, budget)
    for index in truncated:
        log.warning("example %d is too long for the model's context and was truncated", index + 1)
    use_menu = options.quote_menu if options.quote_menu is not None else constrained_decoding(client)
    menu = quote_menu(shown, options.quote_menu_size) if use_menu else []
    report = InferenceReport(truncated_examples=truncated)
    if single:
        drafts, drafted_attributes, completions = await propose_profile(
            client, shown, options.aspects, menu=menu, max_per_aspect=options.max_per_aspect,
            attributes=options.infer_attributes, max_tokens=budget)
        merge_usage(report, completions)
    else:
        drafts, drafted_attributes = await _propose_per_aspect(client, shown, options, menu, report)

    hypotheses: list[Hypothesis] = []
    failed: list[Hypothesis] = []
    seen: set[str] = set()
    for aspect, batch in drafts.items():
        for draft in batch[: options.max_per_aspect]:
            key = evidence.normalize(draft.statement).lower()
            if key in seen:
                continue
            seen.add(key)
            report.proposed += 1
            hypothesis = evidence.check(aspect, draft.statement, list(draft.evidence), examples)
            (hypotheses if hypothesis.supported else failed).append(hypothesis)
    if failed and options.reask:
        failed = await _reask(client, shown, examples, failed, menu, report, hypotheses)
    if options.keep_unsupported:  # kept, flagged, never shown to the generator
        hypotheses += failed
    else:
        report.dropped_unsupported = len(failed)
    report.too_few = sum(h.supported for h in hypotheses) < options.min_hypotheses
    if report.too_few:
        message = (f"only {sum(h.supported for h in hypotheses)} of {report.proposed} proposed hypotheses about "
                   f"{user_id} have a quote found in the texts (fewer than {options.min_hypotheses}); generation "
                   "will rest on the attributes and the measured style facts")
        if options.strict:
            raise TooFewHypothesesError(message + " (strict)")
        log.warning(message)

    inferred: dict[str, str] = {}
    if drafted_attributes is not None:
        inferred = {k: v.strip() for k, v in drafted_attributes.model_dump().items() if v and v.strip()}
    steps = (["infer_profile"] if single else
             ["infer_hypotheses"] + (["infer_attributes"] if options.infer_attributes else []))
    return Profile(
        user_id=user_id,
        attributes={**inferred, **(attributes or {})},  # the caller knows better than the model
        hypotheses=hypotheses,
        examples_hash=examples_hash(examples),
        n_examples=len(examples),
        backend=client.backend.name,
        model=client.model,
        prompt_version=version_tag(*steps, *(["fix_evidence"] if report.reasked else [])),
        report=report,
    )


def constrained_decoding(client: LLMClient) -> bool:
    """Whether the backend enforces a JSON schema while decoding (llama.cpp in-process or as a server, vLLM,
    Ollama): then the quote menu makes invented quotes impossible, at no cost in quality."""
    return bool(getattr(client.backend, "constrained_decoding", False))


def proposal_kind(client: LLMClient, options: InferenceOptions) -> str:
    if options.proposal is not None:
        return options.proposal
    return "per-aspect" if getattr(client.backend, "caches_prompt_prefix", False) else "single"


async def _propose_per_aspect(
    client: LLMClient, shown: list[UserExample], options: InferenceOptions, menu: list[str], report: InferenceReport,
) -> tuple[dict[str, list[HypothesisDraft]], AttributesDraft | None]:
    """The paper's proposal: one call per aspect and one for the attributes, run together (they share a prefix)."""
    schema = batch_schema(menu)
    jobs = [
        propose_hypotheses(client, shown, aspect, guidance, schema=schema, max_hypotheses=options.max_per_aspect,
                           max_tokens=options.max_tokens)
        for aspect, guidance in options.aspects.items()
    ]
    results, drafted_attributes = await asyncio.gather(
        asyncio.gather(*jobs), propose_attributes(client, shown) if options.infer_attributes else _nothing())
    drafts = {}
    for aspect, (batch, completions) in zip(options.aspects, results, strict=True):
        merge_usage(report, completions)
        drafts[aspect] = list(batch.hypotheses)
    if drafted_attributes is None:
        return drafts, None
    attributes, completions = drafted_attributes
    merge_usage(report, completions)
    return drafts, attributes


async def _reask(
    client: LLMClient, shown: list[UserExample], examples: list[UserExample], failed: list[Hypothesis],
    menu: list[str], report: InferenceReport, hypotheses: list[Hypothesis],
) -> list[Hypothesis]:
    """One more call for the failed hypotheses, naming their quotes; those now supported join `hypotheses`. The
    hypotheses still without a found quote are returned."""
    report.reasked = len(failed)
    asked = [FailedEvidence(statement=h.statement, quotes=[e.quote for e in h.evidence]) for h in failed]
    try:
        fixes, completions = await fix_evidence(client, shown, asked, menu=menu, max_tokens=120 * len(asked) + 100)
    except StructuredOutputError as exc:
        log.warning("asking again for quotes failed: %s", exc)
        return failed
    merge_usage(report, completions)
    still = []
    for hypothesis, quotes in zip(failed, fixes, strict=True):
        checked = evidence.check(hypothesis.aspect, hypothesis.statement, quotes, examples) if quotes else hypothesis
        if checked.supported:
            report.recovered += 1
            hypotheses.append(checked)
        else:
            still.append(hypothesis)
    return still


async def ainfer_selected(
    client: LLMClient,
    user_id: str,
    examples: list[UserExample],
    attributes: dict[str, str] | None,
    options: InferenceOptions,
) -> Profile:
    """Infer candidates from all but the last `held_out` examples, score them on those, refine, select."""

    selection = options.selection
    assert selection is not None
    if not selection.score:
        profile = await ainfer_one_pass(client, user_id, examples, attributes, options)
        chosen = select(profile.hypotheses, selection)
        report = profile.report.model_copy(update={"selection": {
            "candidates": len(profile.hypotheses), "scored_on": 0, "refine_rounds": 0, "selected": len(chosen)}})
        return profile.model_copy(update={"hypotheses": chosen, "report": report})
    held = min(selection.held_out, len(examples) - 1)
    if held < 1:
        raise InputError("hypothesis selection needs at least 2 examples: one to infer from, one to score on")
    inferring, scoring = examples[:-held], examples[-held:]
    candidate_options = replace(options, selection=None, max_per_aspect=selection.candidates_per_aspect)
    profile = await ainfer_one_pass(client, user_id, inferring, attributes, candidate_options)
    report = profile.report.model_copy()
    pool, completions = await score_hypotheses(client, profile.hypotheses, scoring)
    merge_usage(report, completions)
    for _ in range(selection.refine_rounds):
        if not pool:
            break
        rated = await asyncio.gather(*(rate_on_text(client, pool, text) for text in inferring))
        merge_usage(report, [c for _, cs in rated for c in cs])
        worst = worst_described(pool, [verdicts for verdicts, _ in rated], max(1, len(inferring) // 2))
        fresh_profile = await ainfer_one_pass(
            client, user_id, [inferring[i] for i in worst], None, replace(candidate_options, infer_attributes=False)
        )
        known = {h.id for h in pool}
        fresh = [h for h in fresh_profile.hypotheses if h.id not in known]
        fresh, completions = await score_hypotheses(client, fresh, scoring)
        merge_usage(report, completions)
        report.add_counts(fresh_profile.report)
        pool += fresh
    chosen = select(pool, selection)
    # Evidence indices refer to the full example list the profile is stored against.
    chosen = [
        h.model_copy(update={"evidence": evidence.check(h.aspect, h.statement, [e.quote for e in h.evidence], examples).evidence})
        for h in chosen
    ]
    report.selection = {
        "candidates": len(pool), "scored_on": len(scoring), "refine_rounds": selection.refine_rounds, "selected": len(chosen),
    }
    return profile.model_copy(update={
        "hypotheses": chosen,
        "examples_hash": examples_hash(examples),
        "n_examples": len(examples),
        "prompt_version": profile.prompt_version + "+" + version_tag("score_hypotheses"),
        "report": report,
    })
