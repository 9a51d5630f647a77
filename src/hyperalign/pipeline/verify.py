"""Discriminative verification: keep a hypothesis only if it tells the person from the contrast.

Selection by support ("does this held-out text show the hypothesis?") keeps anything generic — "is warm", "uses a
variety of sentence lengths" — since every text of the genre shows it. Here each check shows two texts written for
the same task, one by the person and one by the default voice (contrast.py), and asks for every hypothesis at once
which text it describes: "A", "B" or "same". Each pair is shown in both orders; a pair counts as decided only when
both orders point to the same text (a verdict that follows the position is undecided, so a position-biased checker
decides nothing instead of deciding wrongly). A hypothesis's score is the Wilson lower bound of "picks the person"
among its decided pairs (one-sided 95% by default); it is kept when the bound is above `min_score` (0.5: better
than a coin). A generic hypothesis fits both texts, is undecided, and falls out by itself.

A hypothesis is tested only on pairs whose person text it does not quote as evidence: the texts it was read from
cannot confirm it. A person with few texts (fewer than MIN_PAIRS such pairs) cannot reach the bound at all; their
hypotheses are then tested on every pair and kept, marked `provisional`, when every decided pair picked the person
and at least as many were decided as not — the best a few texts can say."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, create_model

from ..llm import Completion, LLMClient
from ..profiles.model import Contrast, Discrimination, Hypothesis, UserExample
from ..prompts import render_messages
from .context import CHARS_PER_TOKEN, PROMPT_OVERHEAD_TOKENS, TRUNCATION_MARK
from .selection import wilson_lower_bound

Pick = Literal["A", "B", "same"]
ONE_SIDED_95 = 1.645
MIN_PAIRS = 3


def _verdict_schema(count: int) -> type[BaseModel]:
    fields = {f"h{i + 1}": (Pick, ...) for i in range(count)}
    return create_model("Discrimination", **fields)  # type: ignore[call-overload]


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(0, chars - len(TRUNCATION_MARK))] + TRUNCATION_MARK


async def _check(client: LLMClient, hypotheses: Sequence[Hypothesis], task: str, first: str, second: str,
                 ) -> tuple[list[str], list[Completion]]:
    messages = render_messages("verify_hypotheses", task=task, first=first, second=second, hypotheses=hypotheses)
    verdicts, completions = await client.acomplete_structured(
        messages, _verdict_schema(len(hypotheses)), step="verify_hypotheses", max_tokens=10 * len(hypotheses) + 40)
    return [getattr(verdicts, f"h{i + 1}") for i in range(len(hypotheses))], completions


async def discriminate(
    client: LLMClient, hypotheses: list[Hypothesis], examples: Sequence[UserExample], contrast: Contrast, *,
    max_pairs: int = 8, z: float = ONE_SIDED_95, min_score: float = 0.5,
) -> tuple[list[Hypothesis], list[Hypothesis], dict[str, float], list[Completion]]:
    """(kept, failed, the verification's statistics, the completions). Hypotheses come back with `discrimination`."""
    pairs = [(c.example_index, c.prompt, examples[c.example_index].text, c.text)
             for c in contrast.texts if c.example_index < len(examples)][:max_pairs]
    if not hypotheses or not pairs:
        return hypotheses, [], {"pairs": float(len(pairs)), "calls": 0.0}, []
    room = None
    if client.backend.context_tokens:  # two texts and the statements in one prompt
        statements = sum(len(h.statement) for h in hypotheses) / CHARS_PER_TOKEN + 10 * len(hypotheses)
        free = client.backend.context_tokens - PROMPT_OVERHEAD_TOKENS - 2 * statements - 40
        room = max(400, int(free * CHARS_PER_TOKEN / 2))
    jobs = []
    for _, task, person, other in pairs:
        person, other = (_clip(person, room), _clip(other, room)) if room else (person, other)
        jobs += [_check(client, hypotheses, task, person, other), _check(client, hypotheses, task, other, person)]
    results = await asyncio.gather(*jobs)
    completions = [c for _, cs in results for c in cs]
    kept: list[Hypothesis] = []
    failed: list[Hypothesis] = []
    positional = judged = 0
    for h_index, hypothesis in enumerate(hypotheses):
        quoted = {e.example_index for e in hypothesis.evidence if e.verified}
        held_out = [i for i, (example_index, *_rest) in enumerate(pairs) if example_index not in quoted]
        few = len(held_out) < MIN_PAIRS
        tally = Discrimination(provisional=few)
        for pair_index in range(len(pairs)) if few else held_out:
            person_first = results[2 * pair_index][0][h_index]
            person_second = results[2 * pair_index + 1][0][h_index]
            judged += 1
            if person_first == "A" and person_second == "B":
                tally.person += 1
            elif person_first == "B" and person_second == "A":
                tally.contrast += 1
            else:
                tally.undecided += 1
                positional += person_first == person_second != "same"
        tally.value = round(wilson_lower_bound(tally.person, tally.decided, z), 4)
        checked = hypothesis.model_copy(update={"discrimination": tally})
        keep = tally.value > min_score or (
            few and tally.person >= 1 and tally.contrast == 0 and tally.person >= tally.undecided)
        (kept if keep else failed).append(checked)
    stats = {"pairs": float(len(pairs)), "calls": float(len(jobs)), "kept": float(len(kept)),
             "failed": float(len(failed)),
             # the share of verdicts that named the same position in both orders: a checker that reads positions
             "position_bound": round(positional / judged, 3) if judged else 0.0}
    return kept, failed, stats, completions
