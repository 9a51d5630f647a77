"""Ablations over shots, hypothesis budget and selection: one authorship run per shots value (sub-folders of the
ablation folder, each resumable), every variant judged against plain hyperalign in the same run."""

from __future__ import annotations

from typing import Any

from ...api import HyperAlign
from ..authorship.report import write_authorship_report
from ..authorship.run import AuthorshipConfig, AuthorshipRun
from ..runs import ProgressHook, RunFolder, no_progress
from .report import write_ablation_report


def _methods_for(methods: list[str], shots: int) -> list[str]:
    # Selection holds examples out to score on, so it needs at least 2.
    return [m for m in methods if not (shots < 2 and ":select" in m)]


def _row(shots: int, method: str, results: dict[str, Any]) -> dict[str, Any]:
    views = results["attribution"]["views"]
    masked = views["masked"]["methods"][method]["all"]["accuracy"] or {}
    raw = views["raw"]["methods"][method]["all"]["accuracy"] or {}
    versus = results["judge"]["matrix"].get(method, {}).get("hyperalign") if method != "hyperalign" else None
    cost = results["cost"]["methods"].get(method) or {}
    return {
        "shots": shots, "method": method,
        "masked_accuracy": masked.get("mean"), "masked_low": masked.get("low"), "masked_high": masked.get("high"),
        "raw_accuracy": raw.get("mean"), "raw_low": raw.get("low"), "raw_high": raw.get("high"),
        "n": masked.get("n"),
        "win_rate_vs_hyperalign": versus["win_rate"] if versus else None,
        "win_rate_se": versus["se"] if versus else None,
        "hypotheses_per_profile": cost.get("hypotheses_per_profile"),
        "prompt_tokens_per_generation": cost.get("prompt_tokens_per_generation"),
    }


async def run_ablation(
    base: AuthorshipConfig, shots_values: list[int], ha: HyperAlign, judge_ha: HyperAlign | None, folder: RunFolder,
    progress: ProgressHook = no_progress,
) -> dict[str, Any]:
    rows = []
    for shots in shots_values:
        config = base.model_copy(update={"shots": shots, "methods": _methods_for(base.methods, shots)})
        sub = RunFolder(folder.path / f"shots-{shots}")
        results = await AuthorshipRun(config, ha, judge_ha, sub, progress).run()
        write_authorship_report(sub, results)
        rows += [_row(shots, method, results) for method in results["methods"]]
        # After every shots value, so a run stopped partway still reports what it finished.
        ablation = {"kind": "ablation", "config": base.model_dump(mode="json"), "shots": [r["shots"] for r in rows if r["method"] == rows[0]["method"]],
                    "rows": rows, "planned_shots": shots_values}
        folder.write_json("results.json", ablation)
        write_ablation_report(folder, ablation)
    return ablation
