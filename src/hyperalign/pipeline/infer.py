"""Inference, the method's first half. The default is the contrastive method (contrastive.py: how the person differs
from the backbone's default voice, verified by discrimination). The paper's method (`method="paper"`) is here:
propose hypotheses and attributes (`propose`), keep those whose quotes the examples really contain (`evidence`),
and optionally score them on held-out texts, select within a budget and refine (`selection`). Either returns an
evidence-checked `Profile`."""

from __future__ import annotations

import asyncio
import logging
import time

from ..errors import InputError
from ..io import check_name
from ..llm import LLMClient, track_usage
from ..profiles.model import (
    InferenceReport,
    Profile,
    UserExample,
    examples_hash,
)
from ..prompts import version_tag
from . import evidence
from .context import fit_examples, token_counter
from .contrastive import ainfer_contrastive
from .drafts import assembled, check_enough, checked_hypotheses, menu_for, proposal_budget, proposal_kind
from .facts import style_facts
from .options import InferenceOptions
from .propose import (
    AttributesDraft,
    HypothesisDraft,
    batch_schema,
    propose_attributes,
    propose_hypotheses,
    propose_profile,
)
from .selection import (
    rate_on_text,
    score_hypotheses,
    select,
    worst_described,
)

__all__ = ["InferenceOptions", "ainfer_profile"]

log = logging.getLogger(__name__)


async def _nothing() -> None:
    return None


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
    if options.method == "contrastive" and options.selection is not None:
        raise InputError("hypothesis selection by held-out support belongs to the paper method (method='paper'); "
                         "the contrastive method verifies hypotheses by telling the person from the default voice")
    with track_usage() as usage:
        if options.method == "contrastive":
            profile = await ainfer_contrastive(client, user_id, examples, attributes, options)
        elif options.selection is not None:
            profile = await ainfer_selected(client, user_id, examples, attributes, options)
        else:
            profile = await ainfer_one_pass(client, user_id, examples, attributes, options)
    update: dict[str, object] = {"usage": usage, "seconds": round(time.perf_counter() - started, 2)}
    if options.method == "paper":
        facts = style_facts([e.text for e in examples], language=options.language) if options.style_facts else []
        profile = profile.model_copy(update={"facts": facts})
        update["measured_facts"] = len(facts)
    return profile.model_copy(update={"report": profile.report.model_copy(update=update)})


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
    budget = proposal_budget(client, options, single)
    shown, truncated = fit_examples(examples, client.backend.context_tokens, budget, token_counter(client))
    menu = menu_for(client, shown, options, truncated)
    report = InferenceReport(truncated_examples=truncated)
    if single:
        drafts, drafted_attributes = await propose_profile(
            client, shown, options.aspects, menu=menu, max_per_aspect=options.max_per_aspect,
            attributes=options.infer_attributes, max_tokens=budget)
    else:
        drafts, drafted_attributes = await _propose_per_aspect(client, shown, options, menu)

    hypotheses = await checked_hypotheses(client, drafts, examples, shown, menu, report, options)
    check_enough(hypotheses, report, options, user_id)

    steps = (["infer_profile"] if single else
             ["infer_hypotheses"] + (["infer_attributes"] if options.infer_attributes else []))
    return assembled(client, user_id, examples, attributes, drafted_attributes, hypotheses, report, steps)


async def _propose_per_aspect(
    client: LLMClient, shown: list[UserExample], options: InferenceOptions, menu: list[str],
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
    drafts = {aspect: list(batch.hypotheses) for aspect, batch in zip(options.aspects, results, strict=True)}
    return drafts, drafted_attributes


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
    candidate_options = options.model_copy(update={"selection": None, "max_per_aspect": selection.candidates_per_aspect})
    profile = await ainfer_one_pass(client, user_id, inferring, attributes, candidate_options)
    report = profile.report.model_copy()
    pool = await score_hypotheses(client, profile.hypotheses, scoring)
    for _ in range(selection.refine_rounds):
        if not pool:
            break
        rated = await asyncio.gather(*(rate_on_text(client, pool, text) for text in inferring))
        worst = worst_described(pool, list(rated), max(1, len(inferring) // 2))
        fresh_profile = await ainfer_one_pass(
            client, user_id, [inferring[i] for i in worst], None,
            candidate_options.model_copy(update={"infer_attributes": False})
        )
        known = {h.id for h in pool}
        fresh = [h for h in fresh_profile.hypotheses if h.id not in known]
        fresh = await score_hypotheses(client, fresh, scoring)
        report.proposed += fresh_profile.report.proposed  # its calls count in the usage tracked around it all
        report.dropped_unsupported += fresh_profile.report.dropped_unsupported
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
