"""Judges from probabilities. A small judge's sampled verdict says more about where a text was shown than about the
text (the 1.5B style judge chose the first-shown text in 359 of 360 pairs), yet how *strongly* it prefers one label
still moves with the texts. So a judge reads its label's probability from the first output token's
log-probabilities, and the pairwise judge's position bias is estimated from the run itself and removed before any
verdict is taken (balanced position calibration, Wang et al. 2023, "Large Language Models are not Fair Evaluators").
Rubric judges score the probability-weighted mean over their labels (G-Eval, arXiv 2303.16634)."""

from __future__ import annotations

import math
from statistics import fmean
from typing import Any

from ..llm.labels import label_probabilities, logit

__all__ = ["calibrated", "expected_value", "label_probabilities", "logit", "position_bias"]

def expected_value(probabilities: dict[str, float], values: dict[str, float]) -> float:
    """The probability-weighted score over a rubric's labels (G-Eval)."""
    return sum(probabilities[label] * values[label] for label in probabilities)


def position_bias(judgments: list[dict[str, Any]]) -> float | None:
    """The judge's preference for the first-shown text, in log-odds, averaged over the run's probability verdicts
    of pairs judged in both orders (in each such pair the two texts trade places, so what survives the average is
    the position, not the texts)."""
    def pair(row: dict[str, Any]) -> tuple[str, str, str, str]:
        x, y = sorted((row["a"], row["b"]))
        return row.get("check", ""), x, y, row["item_id"]

    orders: dict[tuple[str, str, str, str], set[int]] = {}
    for row in judgments:
        if row.get("p_first") is not None:
            orders.setdefault(pair(row), set()).add(row["order"])
    paired = [row for row in judgments if row.get("p_first") is not None and len(orders[pair(row)]) == 2]
    return fmean(logit(row["p_first"]) for row in paired) if paired else None


def calibrated(judgments: list[dict[str, Any]], bias: float | None = None
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each probability verdict's winner taken after the run's position bias is removed from its log-odds: the text
    shown first wins where its log-odds exceed the bias. A pair is then a tie where its two orders still disagree —
    the difference between the texts is within what the position moves. Text verdicts pass unchanged. Returns the
    rows and what the calibration saw (the bias, as log-odds and as P(first shown) at even texts; how often the raw
    verdicts and the calibrated ones chose the first-shown text)."""
    bias = position_bias(judgments) if bias is None else bias
    rows, raw_first, calibrated_first, masses = [], [], [], []
    for row in judgments:
        if row.get("p_first") is None or row.get("winner") is None:
            rows.append(row)
            continue
        first_wins = logit(row["p_first"]) > (bias if bias is not None else 0.0)
        raw_first.append(row["p_first"] > 0.5)
        calibrated_first.append(first_wins)
        masses.append(row.get("label_mass", 1.0))
        rows.append(row | {"raw_winner": row["winner"], "winner": row["a"] if first_wins else row["b"]})
    # A pointwise judge's rows carry two scores and no P(first shown): nothing to calibrate, and not text verdicts.
    pointwise = sum(1 for row in judgments if row.get("verdict") == "pointwise" and row.get("winner") is not None)
    text = sum(1 for row in judgments if row.get("p_first") is None and row.get("winner") is not None) - pointwise
    summary = {
        "verdicts": "probabilities" if raw_first and len(raw_first) == len(rows) else
                    "pointwise" if pointwise and not raw_first and not text else
                    "mixed" if raw_first or pointwise else "text",
        "probability_verdicts": len(raw_first),
        "pointwise_verdicts": pointwise,
        "text_verdicts": text,
        "position_bias_logit": round(bias, 4) if bias is not None else None,
        "position_bias_p_first": round(1 / (1 + math.exp(-bias)), 4) if bias is not None else None,
        "raw_first_shown_share": round(fmean(raw_first), 4) if raw_first else None,
        "calibrated_first_shown_share": round(fmean(calibrated_first), 4) if calibrated_first else None,
        "mean_label_mass": round(fmean(masses), 4) if masses else None,
    }
    return rows, summary
