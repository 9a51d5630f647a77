"""Ablations over shots, hypothesis budget and selection: one authorship run per shots value (sub-folders of the
ablation folder, each resumable), every variant judged against plain hyperalign in the same run."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..api import HyperAlign  # noqa: E402
from .authorship import AuthorshipConfig, AuthorshipRun  # noqa: E402
from .report import write_report  # noqa: E402
from .runs import ProgressHook, RunFolder, no_progress  # noqa: E402


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
        write_report(sub, results)
        rows += [_row(shots, method, results) for method in results["methods"]]
        # After every shots value, so a run stopped partway still reports what it finished.
        ablation = {"config": base.model_dump(mode="json"), "shots": [r["shots"] for r in rows if r["method"] == rows[0]["method"]],
                    "rows": rows, "planned_shots": shots_values}
        folder.write_json("ablation.json", ablation)
        write_ablation_report(folder, ablation)
    return ablation


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def write_ablation_report(folder: RunFolder, ablation: dict[str, Any]) -> None:
    rows = ablation["rows"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, method in enumerate(methods):
        dodge = (index - (len(methods) - 1) / 2) * 0.08  # methods with equal values stay visible side by side
        mine = [r for r in rows if r["method"] == method and r["masked_accuracy"] is not None]
        xs = [r["shots"] + dodge for r in mine]
        axes[0].errorbar(xs, [r["masked_accuracy"] for r in mine], capsize=3, marker="o", label=method,
                         yerr=[[r["masked_accuracy"] - r["masked_low"] for r in mine],
                               [r["masked_high"] - r["masked_accuracy"] for r in mine]])
        versus = [r for r in mine if r["win_rate_vs_hyperalign"] is not None]
        if versus:
            axes[1].errorbar([r["shots"] + dodge for r in versus], [r["win_rate_vs_hyperalign"] for r in versus],
                             yerr=[r["win_rate_se"] for r in versus], capsize=3, marker="o", label=method)
    axes[0].set(title="attribution accuracy (masked view, 95% CI)", xlabel="shots", ylim=(0, 1))
    axes[1].axhline(0.5, color="grey", linestyle="--")
    axes[1].set(title="judge win rate vs one-pass hyperalign (± SE)", xlabel="shots", ylim=(0, 1))
    for ax in axes:
        ax.set_xticks(ablation["shots"])
        ax.legend(fontsize=8)
    fig.tight_layout()
    (folder.path / "plots").mkdir(exist_ok=True)
    fig.savefig(folder.path / "plots" / "ablation.png", dpi=120)
    plt.close(fig)
    c = ablation["config"]
    lines = [f"# Ablation: shots × hypothesis selection and budget ({c['corpus']})", "",
             f"Generation `{c['backend']}:{c['model']}`, judge `{c['judge_backend']}:{c['judge_model']}`; "
             f"{c['authors']} authors × {c['prompts_per_author']} prompts, seed {c['seed']}. Each shots value is a "
             "full authorship run in `shots-N/` (its own report).", "",
             "| shots | method | masked accuracy [95% CI] | raw accuracy [95% CI] | win rate vs hyperalign ± SE | hypotheses / profile | prompt tokens / generation |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['shots']} | {r['method']} | {_fmt(r['masked_accuracy'])} [{_fmt(r['masked_low'])}, {_fmt(r['masked_high'])}] | "
            f"{_fmt(r['raw_accuracy'])} [{_fmt(r['raw_low'])}, {_fmt(r['raw_high'])}] | "
            + (f"{_fmt(r['win_rate_vs_hyperalign'])} ± {_fmt(r['win_rate_se'])}" if r["win_rate_vs_hyperalign"] is not None else "–")
            + f" | {_fmt(r['hypotheses_per_profile'], 1)} | {_fmt(r['prompt_tokens_per_generation'], 0)} |"
        )
    lines += ["", "Plot: `plots/ablation.png`.", ""]
    (folder.path / "ablation.md").write_text("\n".join(lines), encoding="utf-8")
