"""Beyond the paper's one pass: score hypotheses on texts of the user that were not used to infer them, select
the best within a budget, and optionally refine from the texts the set describes worst.

The reward (HypoGeniC's users asked for one that works on generation): how well a hypothesis describes held-out
texts of the same user. Each held-out text rates every hypothesis at once — supports, contradicts, or says
nothing — in one structured call whose schema has one required field per hypothesis. A hypothesis's score is the
Wilson 95% lower bound of its support rate over the texts that rated it, so 1/1 (0.21) ranks below 7/7 (0.65)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, create_model

from . import evidence
from .errors import InputError
from .llm import Completion, LLMClient
from .profile import Hypothesis, HypothesisScore, Profile, UserExample, examples_hash
from .prompts import render_messages, version_tag

if TYPE_CHECKING:
    from .infer import InferenceOptions

Verdict = Literal["supports", "contradicts", "neutral"]
Z_95 = 1.96


def wilson_lower_bound(successes: int, trials: int, z: float = Z_95) -> float:
    if trials == 0:
        return 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - margin) / denominator)  # float error gives -3e-17 at 0 successes


def score_value(score: HypothesisScore | None) -> float:
    return wilson_lower_bound(score.supports, score.tested) if score else 0.0


@dataclass
class SelectionOptions:
    """All optional; the paper's one-pass method (no selection) stays the default."""

    score: bool = True  # False: no held-out scoring, only the budget (hypotheses kept in inferred order)
    held_out: int = 2  # examples kept out of inference to score on (at least 1 is left to infer from)
    candidates_per_aspect: int = 5
    per_aspect: int | None = 3
    max_hypotheses: int | None = None
    max_tokens: int | None = None  # budget for the hypotheses' text as shown to the generator
    refine_rounds: int = 0
    min_score: float = 0.0


def _verdict_schema(count: int) -> type[BaseModel]:
    fields = {f"h{i + 1}": (Verdict, ...) for i in range(count)}
    return create_model("HypothesisVerdicts", **fields)  # type: ignore[call-overload]


async def rate_on_text(
    client: LLMClient, hypotheses: list[Hypothesis], text: UserExample, step: str = "score_hypotheses"
) -> tuple[list[Verdict], list[Completion]]:
    messages = render_messages("score_hypotheses", example=text, hypotheses=hypotheses)
    verdicts, completions = await client.acomplete_structured(
        messages, _verdict_schema(len(hypotheses)), step=step, max_tokens=12 * len(hypotheses) + 40
    )
    return [getattr(verdicts, f"h{i + 1}") for i in range(len(hypotheses))], completions


async def score_hypotheses(
    client: LLMClient, hypotheses: list[Hypothesis], texts: list[UserExample]
) -> tuple[list[Hypothesis], list[Completion]]:
    """New hypotheses with their counts added to any they had (so incremental updates accumulate)."""
    if not hypotheses or not texts:
        return hypotheses, []
    results = await asyncio.gather(*(rate_on_text(client, hypotheses, text) for text in texts))
    scored, completions = [], [c for _, cs in results for c in cs]
    for index, hypothesis in enumerate(hypotheses):
        score = (hypothesis.score or HypothesisScore()).model_copy()
        for verdicts, _ in results:
            verdict = verdicts[index]
            if verdict == "supports":
                score.supports += 1
            elif verdict == "contradicts":
                score.contradicts += 1
            else:
                score.neutral += 1
        score.value = score_value(score)
        scored.append(hypothesis.model_copy(update={"score": score}))
    return scored, completions


def _tokens(hypothesis: Hypothesis) -> int:
    quote = next((e.quote for e in hypothesis.evidence if e.verified), "")
    return math.ceil((len(hypothesis.statement) + len(quote) + 20) / 4)


def select(hypotheses: list[Hypothesis], options: SelectionOptions) -> list[Hypothesis]:
    """Pinned and person-made hypotheses always stay; the rest by score, per aspect, within the budgets."""
    keep = [h for h in hypotheses if h.pinned or h.origin == "person"]
    order = {h.id: i for i, h in enumerate(hypotheses)}
    ranked = sorted(
        (h for h in hypotheses if h not in keep and score_value(h.score) >= options.min_score),
        key=lambda h: (-score_value(h.score), -(h.score.supports if h.score else 0), order[h.id]),
    )
    per_aspect: dict[str, int] = {}
    for h in keep:
        per_aspect[h.aspect] = per_aspect.get(h.aspect, 0) + 1
    tokens = sum(_tokens(h) for h in keep)
    chosen = list(keep)
    for h in ranked:
        if options.per_aspect is not None and per_aspect.get(h.aspect, 0) >= options.per_aspect:
            continue
        if options.max_hypotheses is not None and len(chosen) >= options.max_hypotheses:
            break
        if options.max_tokens is not None and tokens + _tokens(h) > options.max_tokens:
            continue
        chosen.append(h)
        per_aspect[h.aspect] = per_aspect.get(h.aspect, 0) + 1
        tokens += _tokens(h)
    return sorted(chosen, key=lambda h: order[h.id])


def worst_described(hypotheses: list[Hypothesis], verdicts_by_text: list[list[Verdict]], count: int) -> list[int]:
    """Indices of the texts the current hypotheses support least (refinement regenerates from these)."""
    coverage = [sum(v == "supports" for v in verdicts) / max(1, len(verdicts)) for verdicts in verdicts_by_text]
    return sorted(range(len(coverage)), key=lambda i: coverage[i])[:count]


async def ainfer_selected(
    client: LLMClient,
    user_id: str,
    examples: list[UserExample],
    attributes: dict[str, str] | None,
    options: InferenceOptions,
) -> Profile:
    """Infer candidates from all but the last `held_out` examples, score them on those, refine, select."""
    from .infer import ainfer_profile, merge_usage  # infer delegates here; import late to avoid a cycle

    selection = options.selection
    assert selection is not None
    if not selection.score:
        profile = await ainfer_profile(client, user_id, examples, attributes, replace(options, selection=None))
        chosen = select(profile.hypotheses, selection)
        report = profile.report.model_copy(update={"selection": {
            "candidates": len(profile.hypotheses), "scored_on": 0, "refine_rounds": 0, "selected": len(chosen)}})
        return profile.model_copy(update={"hypotheses": chosen, "report": report})
    held = min(selection.held_out, len(examples) - 1)
    if held < 1:
        raise InputError("hypothesis selection needs at least 2 examples: one to infer from, one to score on")
    inferring, scoring = examples[:-held], examples[-held:]
    candidate_options = replace(options, selection=None, max_per_aspect=selection.candidates_per_aspect)
    profile = await ainfer_profile(client, user_id, inferring, attributes, candidate_options)
    report = profile.report.model_copy()
    pool, completions = await score_hypotheses(client, profile.hypotheses, scoring)
    merge_usage(report, completions)
    for _ in range(selection.refine_rounds):
        if not pool:
            break
        rated = await asyncio.gather(*(rate_on_text(client, pool, text) for text in inferring))
        merge_usage(report, [c for _, cs in rated for c in cs])
        worst = worst_described(pool, [verdicts for verdicts, _ in rated], max(1, len(inferring) // 2))
        fresh_profile = await ainfer_profile(
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
