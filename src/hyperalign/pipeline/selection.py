"""Beyond the paper's one pass: score hypotheses on texts of the user that were not used to infer them, select
the best within a budget, and optionally refine from the texts the set describes worst.

The reward (HypoGeniC's users asked for one that works on generation): how well a hypothesis describes held-out
texts of the same user. Each held-out text rates every hypothesis at once — supports, contradicts, or says
nothing — in one structured call whose schema has one required field per hypothesis. A hypothesis's score is the
Wilson 95% lower bound of its support rate over the texts that rated it, so 1/1 (0.21) ranks below 7/7 (0.65)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, create_model

from ..llm import Completion, LLMClient
from ..profiles.model import Hypothesis, HypothesisScore, UserExample
from ..prompts import render_messages
from ..text import estimate_tokens

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


def verdict_schema(count: int, verdict: Any = Verdict, name: str = "HypothesisVerdicts") -> type[BaseModel]:
    """One required field per hypothesis (h1..hN), each one of the verdicts: a check of every hypothesis in one call."""
    fields = {f"h{i + 1}": (verdict, ...) for i in range(count)}
    return create_model(name, **fields)  # type: ignore[call-overload]


def verdicts_of(answer: BaseModel, count: int) -> list[Any]:
    return [getattr(answer, f"h{i + 1}") for i in range(count)]


async def rate_on_text(
    client: LLMClient, hypotheses: list[Hypothesis], text: UserExample, step: str = "score_hypotheses"
) -> tuple[list[Verdict], list[Completion]]:
    messages = render_messages("score_hypotheses", example=text, hypotheses=hypotheses)
    verdicts, completions = await client.acomplete_structured(
        messages, verdict_schema(len(hypotheses)), step=step, max_tokens=12 * len(hypotheses) + 40
    )
    return verdicts_of(verdicts, len(hypotheses)), completions


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
    return estimate_tokens(f"{hypothesis.statement} {quote}") + 5


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
