"""Discriminative verification: keep a hypothesis only if it tells the person from the contrast.

Selection by support ("does this held-out text show the hypothesis?") keeps anything generic — "is warm", "uses a
variety of sentence lengths" — since every text of the genre shows it. Here each check shows two texts written for
the same task, one by the person and one by the default voice (contrast.py), and asks for every hypothesis at once
which text it describes: "A", "B" or "same". Each pair is shown in both orders; a pair counts as decided only when
both orders point to the same text (a verdict that follows the position is undecided, so a position-biased checker
decides nothing instead of deciding wrongly). A hypothesis's score is the Wilson lower bound of "picks the person"
among its decided pairs (one-sided 95% by default); it is kept when the bound is above `min_score` (0.5: better
than a coin). A generic hypothesis fits both texts, is undecided, and falls out by itself. A checker that answers by
position (Qwen2.5-Coder-1.5B named the same letter in both orders in 90% of its verdicts) decides nothing this
way; then each text is rated alone, where no position exists (`discriminate`).

On a backend that returns log-probabilities the check reads probabilities instead of sampled letters: one
single-token call per statement and order, P(A) from the first token, and the checker's position bias (the mean
log-odds of "A" over all the profile's checks, in which the texts trade places) removed before a pair is decided —
the calibration the evaluation's judges use (Wang et al. 2023). A small checker that always says "A" still leans
more or less towards the person's text, and that lean is what decides.

A hypothesis is tested only on pairs whose person text it does not quote as evidence: the texts it was read from
cannot confirm it. A person with few texts (fewer than MIN_PAIRS such pairs) cannot reach the bound at all; their
hypotheses are then tested on every pair and kept, marked `provisional`, when every decided pair picked the person
and at least as many were decided as not — the best a few texts can say."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Literal

from ..llm import LLMClient
from ..llm.labels import logit, read_labels
from ..profiles.model import Contrast, Discrimination, Hypothesis, UserExample, wilson_lower_bound
from ..prompts import render_messages
from ..text import CHARS_PER_TOKEN
from .context import PROMPT_OVERHEAD_TOKENS, clip
from .selection import rate_on_text, verdict_schema, verdicts_of

Pick = Literal["A", "B", "same"]
ONE_SIDED_95 = 1.645
MIN_PAIRS = 3
POSITION_BOUND = 0.8  # share of position-following verdicts above which the pairs said nothing about the texts


async def _check(client: LLMClient, hypotheses: Sequence[Hypothesis], task: str, first: str, second: str,
                 ) -> list[str]:
    messages = render_messages("verify_hypotheses", task=task, first=first, second=second, hypotheses=hypotheses)
    verdicts = await client.acomplete_structured(
        messages, verdict_schema(len(hypotheses), Pick, "Discrimination"), step="verify_hypotheses",
        max_tokens=10 * len(hypotheses) + 40)
    return verdicts_of(verdicts, len(hypotheses))


async def _rate(client: LLMClient, hypotheses: Sequence[Hypothesis], task: str, text: str) -> list[str]:
    """One text alone, every statement rated on it (selection.py's check): no second text, so no position."""
    return list(await rate_on_text(client, list(hypotheses), UserExample(prompt=task, text=text),
                                   step="verify_hypotheses[text]"))


async def _probabilities(client: LLMClient, hypotheses: Sequence[Hypothesis], task: str, first: str, second: str,
                         ) -> list[float | None]:
    """P("A") for each statement on one ordered pair (None where the answer's probability fell elsewhere). One
    after another: the statement comes last in the prompt, so a prefix-caching backend reads the two texts once."""
    chances: list[float | None] = []
    for hypothesis in hypotheses:
        messages = render_messages("verify_hypothesis_label", task=task, first=first, second=second,
                                   hypothesis=hypothesis)
        read = await read_labels(client, messages, ("A", "B"))
        chances.append(read[0]["A"] if read else None)
    return chances


def _calibrated_picks(person_first: list[list[float | None]], person_second: list[list[float | None]]
                      ) -> tuple[list[list[str]], float]:
    """Per pair and statement: "person" when, after the checker's mean lean to "A" is removed, the statement points
    to the person's text in both orders; "contrast" for the reverse; "undecided" otherwise (within what the position
    moves, or unreadable). Returns the picks and the bias as P(A) at even texts."""
    values = [logit(p) for rows in (person_first, person_second) for row in rows for p in row if p is not None]
    bias = sum(values) / len(values) if values else 0.0
    picks = []
    for first_row, second_row in zip(person_first, person_second, strict=True):
        row = []
        for p_first, p_second in zip(first_row, second_row, strict=True):
            if p_first is None or p_second is None:
                row.append("undecided")
                continue
            towards_first, towards_second = logit(p_first) > bias, logit(p_second) > bias
            row.append("person" if towards_first and not towards_second else
                       "contrast" if towards_second and not towards_first else "undecided")
        picks.append(row)
    return picks, 1 / (1 + math.exp(-bias))


async def _probability_picks(client: LLMClient, hypotheses: list[Hypothesis], clipped: list[tuple[int, str, str, str]]
                             ) -> tuple[list[list[str]] | None, dict[str, float]]:
    """The pairs read as probabilities: picks and statistics. No picks where fewer than half of the answers carried
    probability on the letters (then the sampled verdicts decide)."""
    jobs = [_probabilities(client, hypotheses, task, *texts) for _, task, person, other in clipped
            for texts in ((person, other), (other, person))]
    if client.backend.capabilities.prompt_prefix_cache:  # one slot: interleaved pairs would evict each other
        results = [await job for job in jobs]
    else:
        results = list(await asyncio.gather(*jobs))
    first = [results[2 * p] for p in range(len(clipped))]
    second = [results[2 * p + 1] for p in range(len(clipped))]
    stats = {"pairs": float(len(clipped)), "calls": float(len(clipped) * 2 * len(hypotheses))}
    readable = sum(p is not None for row in first + second for p in row)
    if readable < len(hypotheses) * len(clipped):  # fewer than half of the 2 x pairs x statements answers
        return None, stats
    picks, bias = _calibrated_picks(first, second)
    return picks, stats | {"probabilities": 1.0, "position_bias_p_a": round(bias, 3)}


async def discriminate(
    client: LLMClient, hypotheses: list[Hypothesis], examples: Sequence[UserExample], contrast: Contrast, *,
    max_pairs: int = 8, z: float = ONE_SIDED_95, min_score: float = 0.5,
) -> tuple[list[Hypothesis], list[Hypothesis], dict[str, float]]:
    """(kept, failed, the verification's statistics). Hypotheses come back with `discrimination`.

    Pairs first; when the checker answered by position in most verdicts (POSITION_BOUND), it said nothing about the
    texts, and each text of the pairs is rated alone instead (per-text: "supports" for the person's text and not for
    the default's decides for the person, the reverse for the default, anything else is undecided)."""
    pairs = [(c.example_index, c.prompt, examples[c.example_index].text, c.text)
             for c in contrast.texts if c.example_index < len(examples)][:max_pairs]
    if not hypotheses or not pairs:
        return hypotheses, [], {"pairs": float(len(pairs)), "calls": 0.0}
    room = None
    if client.backend.context_tokens:  # two texts and the statements in one prompt
        statements = sum(len(h.statement) for h in hypotheses) / CHARS_PER_TOKEN + 10 * len(hypotheses)
        free = client.backend.context_tokens - PROMPT_OVERHEAD_TOKENS - 2 * statements - 40
        room = max(400, int(free * CHARS_PER_TOKEN / 2))
    clipped = [(i, task, *((clip(p, room), clip(o, room)) if room else (p, o))) for i, task, p, o in pairs]
    if client.backend.capabilities.logprobs:
        read, stats = await _probability_picks(client, hypotheses, clipped)
        if read is not None:
            kept, failed = _score(hypotheses, [i for i, *_ in pairs], read, z, min_score)
            stats.update({"kept": float(len(kept)), "failed": float(len(failed))})
            return kept, failed, stats
    jobs = []
    for _, task, person, other in clipped:
        jobs += [_check(client, hypotheses, task, person, other), _check(client, hypotheses, task, other, person)]
    results = await asyncio.gather(*jobs)
    picks = [[_pick_in_pairs(results[2 * p][h], results[2 * p + 1][h]) for h in range(len(hypotheses))]
             for p in range(len(pairs))]
    judged = len(pairs) * len(hypotheses)
    positional = sum(results[2 * p][h] == results[2 * p + 1][h] != "same"
                     for p in range(len(pairs)) for h in range(len(hypotheses)))
    stats = {"pairs": float(len(pairs)), "calls": float(len(jobs)),
             # the share of verdicts that named the same position in both orders: a checker that reads positions
             "position_bound": round(positional / judged, 3)}
    if positional / judged >= POSITION_BOUND:
        rated = await asyncio.gather(*(_rate(client, hypotheses, task, text)
                                       for _, task, person, other in clipped for text in (person, other)))
        picks = [[_pick_alone(rated[2 * p][h], rated[2 * p + 1][h]) for h in range(len(hypotheses))]
                 for p in range(len(pairs))]
        stats.update({"calls": float(len(jobs) + len(rated)), "per_text": 1.0})
    kept, failed = _score(hypotheses, [i for i, *_ in pairs], picks, z, min_score)
    stats.update({"kept": float(len(kept)), "failed": float(len(failed))})
    return kept, failed, stats


def _pick_in_pairs(person_first: str, person_second: str) -> str:
    if person_first == "A" and person_second == "B":
        return "person"
    if person_first == "B" and person_second == "A":
        return "contrast"
    return "undecided"


def _pick_alone(on_person: str, on_contrast: str) -> str:
    if on_person == "supports" and on_contrast != "supports":
        return "person"
    if on_contrast == "supports" and on_person != "supports":
        return "contrast"
    return "undecided"


def _score(hypotheses: list[Hypothesis], pair_examples: list[int], picks: list[list[str]], z: float,
           min_score: float) -> tuple[list[Hypothesis], list[Hypothesis]]:
    kept: list[Hypothesis] = []
    failed: list[Hypothesis] = []
    for h_index, hypothesis in enumerate(hypotheses):
        quoted = {e.example_index for e in hypothesis.evidence if e.verified}
        held_out = [i for i, example_index in enumerate(pair_examples) if example_index not in quoted]
        few = len(held_out) < MIN_PAIRS
        tally = Discrimination(provisional=few)
        for pair_index in range(len(pair_examples)) if few else held_out:
            pick = picks[pair_index][h_index]
            if pick == "person":
                tally.person += 1
            elif pick == "contrast":
                tally.contrast += 1
            else:
                tally.undecided += 1
        tally.value = round(wilson_lower_bound(tally.person, tally.decided, z), 4)
        checked = hypothesis.model_copy(update={"discrimination": tally})
        keep = tally.value > min_score or (
            few and tally.person >= 1 and tally.contrast == 0 and tally.person >= tally.undecided)
        (kept if keep else failed).append(checked)
    return kept, failed
