"""A reference population's aggregates (`--reference`, a batch's or a tenant's other users): what a person is
compared with beside the default voice (contrast.py), as statistics only — never a text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import sqrt

from .facts import METRICS, Text, content_words, measure


@dataclass
class ReferenceStats:
    """A population's aggregates — per metric the count, sum and sum of squares of its texts' values, and word
    counts — never a text. Sums, so that one person's own texts can be taken out again (`without`): in a batch, each
    user is compared with everyone else."""

    name: str
    texts: int
    sums: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    words: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, name: str, texts: Sequence[str]) -> ReferenceStats:
        stats = cls(name=name, texts=0)
        stats._add(texts, 1)
        return stats

    def without(self, texts: Sequence[str]) -> ReferenceStats:
        """The population less these texts (theirs are in it): aggregates of everyone else."""
        other = ReferenceStats(self.name, self.texts, dict(self.sums), Counter(self.words))
        other._add(texts, -1)
        return other

    def _add(self, texts: Sequence[str], sign: int) -> None:
        parsed = [Text.of(t) for t in texts if t.strip()]
        self.texts += sign * len(parsed)
        for metric in METRICS:
            n, total, squares = self.sums.get(metric, (0, 0.0, 0.0))
            for t in parsed:
                value = measure(metric, t)
                if value is not None:
                    n, total, squares = n + sign, total + sign * value, squares + sign * value * value
            self.sums[metric] = (n, total, squares)
        for t in parsed:
            counts = Counter(content_words(t.raw))
            if sign > 0:
                self.words.update(counts)
            else:
                self.words.subtract(counts)
        self.words = +self.words  # drop zero and negative counts

    @property
    def metrics(self) -> dict[str, tuple[float, float]]:
        """metric -> (mean, population standard deviation), where at least two texts give a value."""
        result = {}
        for metric, (n, total, squares) in self.sums.items():
            if n >= 2:
                average = total / n
                result[metric] = (average, sqrt(max(0.0, squares / n - average * average)))
        return result
