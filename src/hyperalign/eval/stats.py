"""Statistics every evaluation reports: bootstrap intervals of a mean, and a mean with its standard error (judge
win rates over prompts)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def bootstrap(values: list[float], seed: int = 0, resamples: int = 2000) -> Interval:
    if not values:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    return Interval(float(data.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)), len(data))


def mean_and_se(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (sample standard deviation / sqrt(n); 0 for a single value)."""
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(variance / len(values))
