"""Beyond the paper's one pass: score hypotheses on texts of the user that were not used to infer them, select
the best within a budget, and optionally refine from the texts the set describes worst.

The reward (HypoGeniC's users asked for one that works on generation): how well a hypothesis describes held-out
texts of the same user. Each held-out text rates every hypothesis at once — supports, contradicts, or says
nothing — in one structured call whose schema has one required field per hypothesis. A hypothesis's score is the
Wilson 95% lower bound of its support rate over the texts that rated it, so 1/1 (0.21) ranks below 7/7 (0.65)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..llm import LLMClient
from ..profiles.model import Hypothesis, HypothesisScore, UserExample, wilson_lower_bound
from ..prompts import render_messages
from ..text import estimate_tokens

Verdict = Literal["supports", "contradicts", "neutral"]


def score_value(score: HypothesisScore | None) -> float:
    return wilson_lower_bound(score.supports, score.tested) if score else 0.0


class SelectionOptions(BaseModel):
    """Held-out scoring, a budget and refinement for the paper method (all optional; its one pass stays the
    default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: bool = Field(True, description="score candidates on held-out examples (False: only the budget, "
                        "hypotheses kept in inferred order)")
    held_out: int = Field(2, ge=1, description="examples kept out of inference to score on (at least 1 is left to "
                          "infer from)")
    candidates_per_aspect: int = Field(5, ge=1, description="candidates proposed per aspect")
    per_aspect: int | None = Field(3, ge=1, description="kept per aspect at most")
    max_hypotheses: int | None = Field(None, ge=1, description="kept in all at most")
    max_tokens: int | None = Field(None, ge=1, description="budget for the hypotheses' text as shown to the "
                                   "generator")
    refine_rounds: int = Field(0, ge=0, le=10, description="rounds of new candidates from the worst-described texts")
    min_score: float = Field(0.0, ge=0.0, le=1.0, description="the least support score kept")


def verdict_schema(count: int, verdict: Any = Verdict, name: str = "HypothesisVerdicts") -> type[BaseModel]:
    """One required field per hypothesis (h1..hN), each one of the verdicts: a check of every hypothesis in one call."""
    fields = {f"h{i + 1}": (verdict, ...) for i in range(count)}
    return create_model(name, **fields)  # type: ignore[call-overload]


def verdicts_of(answer: BaseModel, count: int) -> list[Any]:
    return [getattr(answer, f"h{i + 1}") for i in range(count)]


async def rate_on_text(
    client: LLMClient, hypotheses: list[Hypothesis], text: UserExample, step: str = "score_hypotheses"
) -> list[Verdict]:
    messages = render_messages("score_hypotheses", example=text, hypotheses=hypotheses)
    verdicts = await client.acomplete_structured(
        messages, verdict_schema(len(hypotheses)), step=step, max_tokens=12 * len(hypotheses) + 40
    )
    return verdicts_of(verdicts, len(hypotheses))


async def score_hypotheses(
    client: LLMClient, hypotheses: list[Hypothesis], texts: list[UserExample]
) -> list[Hypothesis]:
    """New hypotheses with their counts added to any they had (so incremental updates accumulate)."""
    if not hypotheses or not texts:
        return hypotheses
    results = await asyncio.gather(*(rate_on_text(client, hypotheses, text) for text in texts))
    scored = []
    for index, hypothesis in enumerate(hypotheses):
        score = (hypothesis.score or HypothesisScore()).model_copy()
        for verdicts in results:
            verdict = verdicts[index]
            if verdict == "supports":
                score.supports += 1
            elif verdict == "contradicts":
                score.contradicts += 1
            else:
                score.neutral += 1
        score.value = score_value(score)
        scored.append(hypothesis.model_copy(update={"score": score}))
    return scored


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
