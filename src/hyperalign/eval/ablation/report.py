"""The ablation's report: a table of every shots value × method and one plot (attribution, win rate vs hyperalign)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..runs import RunFolder


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
    folder.file("report.md").write_text("\n".join(lines), encoding="utf-8")
