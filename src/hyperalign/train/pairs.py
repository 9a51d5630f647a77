"""The online DPO comparisons: each step's mix of demonstration-vs-current, demonstration-vs-older and
newer-vs-older samples. Plain Python, so it is tested without torch."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .config import DPOSettings
from .data import Demonstration

PAIR_KINDS = ("demo_vs_current", "demo_vs_older", "newer_vs_older")


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    kind: str


# rounds[r][i]: the samples drawn in sampling round r (oldest first) for demonstration i.
SampleRounds = Sequence[Sequence[Sequence[str]]]


def pair_counts(total: int, fractions: dict[str, float]) -> dict[str, int]:
    return {kind: round(total * fractions[kind]) for kind in PAIR_KINDS}


def build_step_pairs(
    demonstrations: Sequence[Demonstration],
    rounds: SampleRounds,
    *,
    batch_prompts: int,
    pairs_per_prompt: int,
    fractions: dict[str, float],
    rng: random.Random,
) -> list[Pair]:
    """One DPO step's comparisons, as the authors' collator builds them: a batch of prompts, pairs_per_prompt
    comparisons per prompt, split 70/20/10 between the demonstration over a current sample, the demonstration over an
    older sample and a newer sample over an older one. A kind with too few candidates contributes all it has, so
    round 1 (no older samples) holds only demonstration-vs-current comparisons, and fewer of them."""
    if not rounds:
        raise ValueError("no samples yet")
    chosen = sorted(rng.sample(range(len(demonstrations)), min(batch_prompts, len(demonstrations))))
    current, older = rounds[-1], rounds[:-1]
    pools: dict[str, list[Pair]] = {kind: [] for kind in PAIR_KINDS}
    for i in chosen:
        demo = demonstrations[i]
        pools["demo_vs_current"] += [Pair(demo.prompt, demo.text, s, "demo_vs_current") for s in current[i]]
        pools["demo_vs_older"] += [Pair(demo.prompt, demo.text, s, "demo_vs_older") for r in older for s in r[i]]
        for newer in range(len(rounds)):
            for old in range(newer):
                pools["newer_vs_older"] += [
                    Pair(demo.prompt, a, b, "newer_vs_older") for a in rounds[newer][i] for b in rounds[old][i]
                ]
    pairs: list[Pair] = []
    for kind, count in pair_counts(pairs_per_prompt * len(chosen), fractions).items():
        pool = pools[kind]
        pairs += rng.sample(pool, min(count, len(pool)))
    return pairs


def build_round_pairs(
    demonstrations: Sequence[Demonstration], rounds: SampleRounds, steps: int, settings: DPOSettings, rng: random.Random
) -> list[list[Pair]]:
    """The comparisons of every step of one sampling round (a fresh draw per step)."""
    return [
        build_step_pairs(
            demonstrations, rounds, batch_prompts=settings.batch_prompts, pairs_per_prompt=settings.pairs_per_prompt,
            fractions=settings.fractions(), rng=rng,
        )
        for _ in range(steps)
    ]


def batch_shape(pairs_per_step: int, micro_batch_size: int) -> tuple[int, int]:
    """(per-device batch, gradient accumulation) that make exactly pairs_per_step comparisons per optimizer step."""
    per_device = max(d for d in range(1, min(micro_batch_size, pairs_per_step) + 1) if pairs_per_step % d == 0)
    return per_device, pairs_per_step // per_device
