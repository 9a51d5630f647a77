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
single-token call per statement and order, P(A) from the first token. A statement's *lean* on a pair is the log-odds
of "A" with the person's text first minus that with it second: the checker's position bias is in both and cancels
exactly, pair by pair and statement by statement (Wang et al. 2023's balanced positions, without assuming one bias
for the whole profile). A small checker that always says "A" still leans more or less towards the person's text, and
that lean is what decides. A checker may also prefer one text of a pair whatever the statement (the human one, the
longer one); a placebo statement both texts fit equally is checked on every pair, and its lean is taken from every
statement's, so a generic statement that only rides that preference leans nowhere. A pair decides by the lean's
sign where it is at least MIN_LEAN. With leans, a hypothesis is also kept when the one-sided 95% t lower bound of
its mean lean is above MIN_LEAN (MIN_PAIRS leans at least): a statement that points to the person strongly on most
pairs and weakly the other way on one is real, though the Wilson bound of a handful of signs cannot show it. Every lean is kept in the hypothesis's `discrimination`, and the hypotheses
that failed are kept in the profile's report, so a reader sees why each one went.

With `pointwise` (and log-probabilities), no pair is ever shown together: each text of a pair is read alone with
each statement — P("Yes": the statement describes how this text is written) — and the lean is the log-odds of the
person's text minus the default's, less the placebo's. There is no position to cancel. Why: scored one text at a
time, Qwen2.5-Coder-1.5B told the author's real text from its own zero-shot text on 80–93 % of tasks where its
calibrated pairwise verdicts were a coin (eval/judge.py, benchmarks/pointwise_judge.py); the same may hold for
hypotheses. Without log-probabilities it falls back to the pairwise check.

A hypothesis is tested only on pairs whose person text it does not quote as evidence: the texts it was read from
cannot confirm it. A person with few texts (fewer than MIN_PAIRS such pairs) cannot reach the bound at all; their
hypotheses are then tested on every pair and kept, marked `provisional`, when every decided pair picked the person
and at least as many were decided as not — the best a few texts can say."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Literal

from scipy.stats import t as student_t

from ..llm import LLMClient
from ..llm.labels import logit, read_labels
from ..profiles.model import Contrast, Discrimination, Hypothesis, UserExample, wilson_lower_bound
from ..profiles.types import Aspect
from ..prompts import render_messages
from ..text import CHARS_PER_TOKEN
from .context import PROMPT_OVERHEAD_TOKENS, clip
from .selection import rate_on_text, verdict_schema, verdicts_of

Pick = Literal["A", "B", "same"]
ONE_SIDED_95 = 1.645
MIN_PAIRS = 3
POSITION_BOUND = 0.8  # share of position-following verdicts above which the pairs said nothing about the texts
# The smallest lean (log-odds, both orders together) that counts: a pair leaning less decides nothing, and a
# hypothesis kept by its mean lean must have its lower bound above it. Qwen2.5-Coder-1.5B's leans on AAAC essays were
# all within ±0.23 (median |lean| 0.05): consistent specks of preference that a t bound alone would keep.
MIN_LEAN = 0.2
# Both texts of a pair answer the same task: a checker that leans on this statement leans on the text, not on a trait.
PLACEBO = Hypothesis(aspect=Aspect.WRITING_STYLE, statement="The text answers the task it was given.",
                     evidence=[])


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


async def _label_chances(client: LLMClient, statements: Sequence[Hypothesis], template: str, labels: tuple[str, str],
                        **values: str) -> list[float | None]:
    """The first label's probability for each statement, rendered into `template` with `values` (the pair in both
    orders' "A"/"B", or one text's "Yes"/"No"); None where the answer's probability fell elsewhere. One after
    another: the statement comes last in the prompt, so a prefix-caching backend reads the texts once."""
    chances: list[float | None] = []
    for hypothesis in statements:
        read = await read_labels(client, render_messages(template, hypothesis=hypothesis, **values), labels)
        chances.append(read[0][labels[0]] if read else None)
    return chances


def _leans(person_first: list[list[float | None]], person_second: list[list[float | None]]
           ) -> tuple[list[list[float | None]], list[float]]:
    """Per pair and statement (the last is the placebo): the log-odds of "A" with the person's text first minus with
    it second, less the placebo's on the same pair; None where a probability was unreadable. Also the placebo's own
    leans, on the pairs where it was readable."""
    leans: list[list[float | None]] = []
    placebo_leans: list[float] = []
    for first_row, second_row in zip(person_first, person_second, strict=True):
        raw = [logit(a) - logit(b) if a is not None and b is not None else None
               for a, b in zip(first_row, second_row, strict=True)]
        placebo = raw[-1] if raw[-1] is not None else 0.0
        if raw[-1] is not None:
            placebo_leans.append(raw[-1])
        leans.append([None if value is None else round(value - placebo, 3) for value in raw[:-1]])
    return leans, placebo_leans


def _pick_by_lean(lean: float | None) -> str:
    if lean is None or abs(lean) < MIN_LEAN:
        return "undecided"
    return "person" if lean > 0 else "contrast"


async def _probability_leans(client: LLMClient, hypotheses: list[Hypothesis],
                             clipped: list[tuple[int, str, str, str]], pointwise: bool = False,
                             ) -> tuple[list[list[float | None]] | None, dict[str, float]]:
    """The pairs read as probabilities: each statement's lean per pair (_leans) and statistics. None where fewer than
    half of the answers carried probability on the labels (then the sampled verdicts decide). Pairwise, the two
    reads of a pair are its two orders (P("A")); pointwise, its two texts alone (P("Yes")): the person's, then the
    default's — the same difference of log-odds either way."""
    statements = [*hypotheses, PLACEBO]
    if pointwise:
        jobs = [_label_chances(client, statements, "verify_hypothesis_point", ("Yes", "No"), task=task, text=text)
                for _, task, person, other in clipped for text in (person, other)]
    else:
        jobs = [_label_chances(client, statements, "verify_hypothesis_label", ("A", "B"), task=task, first=first,
                               second=second)
                for _, task, person, other in clipped for first, second in ((person, other), (other, person))]
    if client.backend.capabilities.prompt_prefix_cache:  # one slot: interleaved pairs would evict each other
        results = [await job for job in jobs]
    else:
        results = list(await asyncio.gather(*jobs))
    first = [results[2 * p] for p in range(len(clipped))]
    second = [results[2 * p + 1] for p in range(len(clipped))]
    stats = {"pairs": float(len(clipped)), "calls": float(len(clipped) * 2 * len(statements))}
    readable = [p for row in first + second for p in row if p is not None]
    if len(readable) < len(statements) * len(clipped):  # fewer than half of the 2 x pairs x statements answers
        return None, stats
    # Reported: how much the checker leans to "A" at even texts (pairwise), or to "Yes" on any text (pointwise).
    bias = round(1 / (1 + math.exp(-sum(map(logit, readable)) / len(readable))), 3)
    leans, placebo = _leans(first, second)
    return leans, stats | {
        "probabilities": 1.0, **({"pointwise": 1.0, "mean_p_yes": bias} if pointwise else {"position_bias_p_a": bias}),
        # how far the checker leans to the person's text whatever the statement (taken from every lean)
        "placebo_lean": round(sum(placebo) / len(placebo), 3) if placebo else 0.0}


async def discriminate(
    client: LLMClient, hypotheses: list[Hypothesis], examples: Sequence[UserExample], contrast: Contrast, *,
    max_pairs: int = 8, z: float = ONE_SIDED_95, min_score: float = 0.5, pointwise: bool = False,
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
        leans, stats = await _probability_leans(client, hypotheses, clipped, pointwise)
        if leans is not None:
            picks = [[_pick_by_lean(lean) for lean in row] for row in leans]
            kept, failed = _score(hypotheses, [i for i, *_ in pairs], picks, z, min_score, leans)
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
           min_score: float, leans: list[list[float | None]] | None = None,
           ) -> tuple[list[Hypothesis], list[Hypothesis]]:
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
            lean = leans[pair_index][h_index] if leans is not None else None
            if lean is not None:
                tally.leans.append(lean)
        tally.value = round(wilson_lower_bound(tally.person, tally.decided, z), 4)
        tally.lean_bound = lean_lower_bound(tally.leans)
        checked = hypothesis.model_copy(update={"discrimination": tally})
        keep = tally.value > min_score or (not few and tally.lean_bound is not None and tally.lean_bound > MIN_LEAN) or (
            few and tally.person >= 1 and tally.contrast == 0 and tally.person >= tally.undecided)
        (kept if keep else failed).append(checked)
    return kept, failed


def lean_lower_bound(leans: Sequence[float], confidence: float = 0.95) -> float | None:
    """The one-sided lower confidence bound of the mean lean (Student's t), or None with fewer than MIN_PAIRS leans.
    All leans equal (no spread) give the mean itself."""
    if len(leans) < MIN_PAIRS:
        return None
    mean = sum(leans) / len(leans)
    variance = sum((x - mean) ** 2 for x in leans) / (len(leans) - 1)
    return round(mean - float(student_t.ppf(confidence, len(leans) - 1)) * math.sqrt(variance / len(leans)), 3)
