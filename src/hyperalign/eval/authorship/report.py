"""Render a run's results.json as report.md, results.csv and PNG plots. `hyperalign report RUN` calls this again."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from ...pipeline.generic import GENERIC_SHARE
from ..judge import POINTWISE_TIE
from ..runs import RunFolder
from .delta import SUMMARIES


def _pct(block: dict[str, Any] | None) -> str:
    if not block or block.get("accuracy") is None:
        return "–"
    acc = block["accuracy"]
    return f"{acc['mean']:.2f} [{acc['low']:.2f}, {acc['high']:.2f}] (n={acc['n']})"


def _ci(block: dict[str, Any] | None, digits: int = 2) -> str:
    if not block or not block.get("n"):
        return "–"
    mean, low, high = (round(block[k], digits) + 0.0 for k in ("mean", "low", "high"))  # + 0.0: no "-0.00"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _with_n(block: dict[str, Any] | None) -> str:
    """A margin's interval and how many outputs it covers; '–' where it is not in the results (an older run)."""
    return "–" if not block or not block.get("n") else f"{_ci(block, digits=3)} (n={block['n']})"


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def csv_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for view, block in results["attribution"]["views"].items():
        for name, summary in [("ceiling_real_texts", block["ceiling_real_texts"]), ("floor_opening_only", block["floor_opening_only"])]:
            if summary and summary["accuracy"]:
                rows.append({"metric": "attribution_accuracy", "view": view, "method": name, "subset": "all",
                             "value": summary["accuracy"]["mean"], "low": summary["accuracy"]["low"],
                             "high": summary["accuracy"]["high"], "n": summary["n"]})
        for method, subsets in block["methods"].items():
            for subset, summary in subsets.items():
                if summary["accuracy"]:
                    for metric, value in [("attribution_accuracy", summary["accuracy"]["mean"]),
                                          ("target_probability", summary["mean_probability"]),
                                          ("target_rank", summary["mean_rank"])]:
                        low = summary["accuracy"]["low"] if metric == "attribution_accuracy" else ""
                        high = summary["accuracy"]["high"] if metric == "attribution_accuracy" else ""
                        rows.append({"metric": metric, "view": view, "method": method, "subset": subset,
                                     "value": value, "low": low, "high": high, "n": summary["n"]})
    second = results["attribution"].get("second") or {}
    blocks = {**second.get("methods", {}), **{k: second[k] for k in ("ceiling_real_texts", "floor_other_authors")
                                              if k in second}}
    for name, block in blocks.items():
        summaries = [(metric, "all", block.get(metric)) for metric in SUMMARIES]
        summaries.append(("delta_margin", "without_copying", block.get("delta_margin_without_copying")))
        paired = f"delta_margin_vs_{second.get('paired_against', '')}"
        summaries += [(paired, subset, block.get(key)) for subset, key in (("all", paired),
                                                                          ("without_copying", f"{paired}_without_copying"))]
        for metric, subset, summary in summaries:
            if summary:
                rows.append({"metric": metric, "view": "", "method": name, "subset": subset, "value": summary["mean"],
                             "low": summary["low"], "high": summary["high"], "n": summary["n"]})
    for row_method, cols in shown_win_rates(results["judge"]).items():
        for col, cell in cols.items():
            if cell:
                rows.append({"metric": "win_rate", "view": f"vs {col}", "method": row_method, "subset": "",
                             "value": cell["win_rate"], "low": cell["win_rate"] - cell["se"],
                             "high": cell["win_rate"] + cell["se"], "n": cell["n"]})
    for method, cost in results["cost"]["methods"].items():
        for metric, value in (cost or {}).items():
            rows.append({"metric": metric, "view": "", "method": method, "subset": "", "value": value,
                         "low": "", "high": "", "n": ""})
    return rows


def shown_win_rates(judge: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The win-rate matrix, or nothing where the judge failed its validity check: its win rates mean nothing."""
    check = judge.get("validity")
    return {} if check and not check["passed"] else judge["matrix"]


def judge_section(judge: dict[str, Any]) -> list[str]:
    if not judge["pairs_judged"] and not judge.get("validity"):
        return ["No pairs judged."]
    lines: list[str] = []
    calibration = judge.get("calibration") or {}
    if calibration.get("pointwise_verdicts") and not calibration.get("probability_verdicts"):
        lines += ["Verdicts from a pointwise judge: each text scored alone beside the reference, as the probability "
                  f"of its first label; a pair goes to the higher score (within {POINTWISE_TIE}, a tie). No two texts are shown "
                  "together, so there is no position to calibrate.", ""]
    elif calibration.get("probability_verdicts"):
        lines += [f"Verdicts from label probabilities (the first output token's log-probabilities), calibrated: "
                  f"the run's position bias, P(first shown) = {calibration['position_bias_p_first']:.2f} at even "
                  f"texts, is removed before each verdict. Raw verdicts chose the first-shown text in "
                  f"{calibration['raw_first_shown_share']:.0%}, calibrated ones in "
                  f"{calibration['calibrated_first_shown_share']:.0%}; "
                  f"{calibration['mean_label_mass']:.0%} of the first token's probability fell on the labels"
                  + (f"; {calibration['text_verdicts']} pairs fell back to text verdicts." if calibration[
                      "text_verdicts"] else "."), ""]
    else:
        lines += ["Verdicts sampled as text (this backend returns no log-probabilities): not calibrated.", ""]
    check = judge.get("validity")
    if check:
        outcome = "passed" if check["passed"] else "**failed**"
        lines += [f"Validity check ({outcome}): the author's real held-out text beat {check['against']}'s output in "
                  f"{check['real_wins']:.2f} [{check['low']:.2f}, {check['high']:.2f}] of {check['n']} tasks (tie = "
                  f"½); a judge passes at ≥ {check['threshold']:.0%} with its 95% interval above 0.5.", ""]
    elif judge["pairs_judged"]:
        lines += ["No validity check (it needs zero-shot among the methods): the win rates below are unproven.", ""]
    if not judge["pairs_judged"]:
        return [*lines, "No pair of methods judged in this run (judged against: validity)."]
    if judge.get("judged_by_position"):
        lines += [f"**This judge chose by position, not by text:** its verdict survived swapping the order in "
                  f"{judge['position_consistency']:.0%} of pairs (a coin would in half) and it chose the text "
                  f"shown first in {judge['first_shown_share']:.0%} of verdicts. Its win rates are mostly "
                  "ties by construction and carry little signal: judge with a stronger model.", ""]
    if not shown_win_rates(judge):
        return [*lines, f"This judge cannot tell the author's real text from a default answer, so no win rate of "
                f"the {judge['pairs_judged']} judged pairs is shown: judge with a stronger model."]
    methods = list(judge["matrix"])
    lines += ["Win rate of the row method against the column method (tie = ½; a verdict that flips when the "
              "order is swapped is a tie) ± standard error.", "",
              "| | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for row in methods:
        cells = [f"{cell['win_rate']:.2f} ± {cell['se']:.2f}" if cell else "–" for cell in judge["matrix"][row].values()]
        lines.append(f"| **{row}** | " + " | ".join(cells) + " |")
    agree = judge.get("agreement_with_delta_margin")
    if agree:
        lines += ["", f"Agreement with the judge-free Delta margin: the judge's decided pairs went to the method whose "
                      f"output had the higher margin on that task in {agree['agree']:.2f} [{agree['low']:.2f}, "
                      f"{agree['high']:.2f}] of {agree['n']} pairs (0.5: no relation)."]
    if (judge.get("calibration") or {}).get("verdicts") == "pointwise":
        # Scored one text at a time, a verdict flips with the order only on a tie: "consistency" is the untied share.
        lines += ["", f"Pairs not tied: {judge['position_consistency']:.2f} of {judge['pairs_judged']}; "
                      f"invalid verdicts: {judge['invalid_verdicts']}."]
        return lines
    lines += ["", f"Position consistency: {judge['position_consistency']:.2f} over {judge['pairs_judged']} pairs; "
                  f"invalid verdicts: {judge['invalid_verdicts']}."]
    return lines


def _second_cells(block: dict[str, Any]) -> str:
    # "delta_margin" is absent from reports rendered before it existed: the cell stays empty, not a crash.
    return " | ".join(_ci(block.get(key), digits=3 if key == "delta_margin" else 2)
                      for key in SUMMARIES)


def _judge_label(config: dict[str, Any], judge: dict[str, Any]) -> str:
    if not judge.get("judge"):  # run with --judge none: there is no judge to name
        return "none"
    return f"`{config['judge_backend']}:{config['judge_model']}` ({judge['judge']})"


def markdown(results: dict[str, Any]) -> str:
    c = results["config"]
    att = results["attribution"]
    lines = [
        f"# Authorship evaluation: {Path(c['corpus']).name}", "",
        f"- Generation: `{c['backend']}:{c['model']}` · judge: " + _judge_label(c, results["judge"]),
        f"- {len(results['authors'])} authors × {c['prompts_per_author']} prompts = {results['n_prompts']} prompts; "
        f"{c['shots']} shots; seed {c['seed']}; methods: {', '.join(c['methods'])}",
        f"- Authors: {', '.join(results['authors'])}",
    ]
    if results["skipped_authors"]:
        lines.append(f"- Skipped (too few texts): {len(results['skipped_authors'])}: "
                     + "; ".join(f"{a} ({why})" for a, why in results["skipped_authors"].items()))
    lines += ["", "## Stylometric attribution (judge-free)", "",
              f"Closed set of {len(results['authors'])} authors (chance {att['chance']:.2f}); char 3-gram linear SVM "
              "trained on the authors' training texts. The opening the prompt hands over is stripped from every text "
              "before attribution. *masked* = text distortion (only the 300 most frequent words kept): the style view; "
              "*raw* also sees topic. Accuracy with bootstrap 95% interval.", "",
              "| method | masked: accuracy | raw: accuracy | masked: p(target) | masked: rank | copy rate | copying outputs | masked, without copying |",
              "|---|---|---|---|---|---|---|---|"]
    masked, raw = att["views"]["masked"], att["views"]["raw"]
    for name in results["methods"]:
        mm, rm = masked["methods"].get(name), raw["methods"].get(name)
        if not mm:
            continue
        cp = att["copying"].get(name, {})
        lines.append(f"| {name} | {_pct(mm['all'])} | {_pct(rm['all'])} | {_num(mm['all']['mean_probability'], 3)} | "
                     f"{_num(mm['all']['mean_rank'], 2)} | {_num(cp.get('mean_copy_rate'), 3)} | "
                     f"{_num(cp.get('copying_share'), 2)} | {_pct(mm['without_copying'])} |")
    lines.append(f"| *real held-out texts (ceiling)* | {_pct(masked['ceiling_real_texts'])} | {_pct(raw['ceiling_real_texts'])} | | | | | |")
    if masked["floor_opening_only"]:
        lines.append(f"| *the given opening alone (floor)* | {_pct(masked['floor_opening_only'])} | {_pct(raw['floor_opening_only'])} | | | | | |")
    second = att.get("second")
    if second:
        lines += ["", "## A second judge-free metric, in the Authorship Gap frame", "",
                  f"Features: {second['features']}. *Delta*: Burrows' Delta to the target author (lower is closer) "
                  "and attribution by the lowest Delta. *Margin*: mean Delta to the other authors minus Delta to the "
                  "target (higher = more this author's than anyone's; a text that only moves towards the genre lowers "
                  "its Delta without raising its margin). *Facts*: adherence to the style facts measured from the target "
                  "author's demonstrations (0–1; best-of-N reranks by it, so it is not independent for those methods). "
                  "Ceiling: real held-out texts against their own author; floor: real held-out texts against every "
                  "other author. *Margin − few-shot*: the method's margin minus few-shot's on the same prompts (paired). "
                  "*Margin, without copying*: the margin of the outputs that do not copy the author's demonstrations "
                  "(the attribution table's threshold), with how many there are; and the paired difference with "
                  "few-shot on the prompts where neither output copies.",
                  "",
                  "| method | Delta accuracy | Delta to target | Delta margin | facts adherence | margin − few-shot (paired) "
                  "| margin, without copying | margin − few-shot, neither copying |",
                  "|---|---|---|---|---|---|---|---|"]
        paired = f"delta_margin_vs_{second.get('paired_against', '')}"
        for name in results["methods"]:
            block = second["methods"].get(name)
            if block and block["n"]:
                lines.append(f"| {name} | {_second_cells(block)} | {_ci(block.get(paired), digits=3)} | "
                             f"{_with_n(block.get('delta_margin_without_copying'))} | "
                             f"{_with_n(block.get(paired + '_without_copying'))} |")
        for label, key in (("*real held-out texts (ceiling)*", "ceiling_real_texts"),
                           ("*other authors' real texts (floor)*", "floor_other_authors")):
            block = second[key]
            lines.append(f"| {label} | {_second_cells(block)} | | | |")
    lines += ["", "## Pairwise LLM judge", "", *judge_section(results["judge"])]
    cost = results["cost"]
    lines += ["", "## Cost", "", "| method | prompt tokens / generation | of them computed | completion tokens / generation | "
              "LLM calls / generation | s / generation | inference calls / user | inference s / user | "
              "LLM calls / user | prompt tokens / generation incl. inference |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for method, block in cost["methods"].items():
        if block:
            lines.append(f"| {method} | {_num(block['prompt_tokens_per_generation'])} | "
                         f"{_num(block.get('computed_prompt_tokens_per_generation'))} | "
                         f"{_num(block['completion_tokens_per_generation'])} | "
                         f"{_num(block.get('llm_calls_per_generation'), 1)} | {_num(block.get('seconds_per_generation'), 1)} | "
                         f"{_num(block['inference_calls_per_user'], 1)} | {_num(block.get('inference_seconds_per_user'), 0)} | "
                         f"{_num(block['llm_calls_per_user'], 1)} | {_num(block['prompt_tokens_per_generation_amortized'])} |")
        else:
            lines.append(f"| {method} | (imported: not measured) | | | | | | | | |")
    if cost["hyperalign_over_few_shot_prompt_tokens"] is not None:
        lines += ["", f"hyperalign / few-shot prompt tokens per generation: "
                      f"**{cost['hyperalign_over_few_shot_prompt_tokens']:.2f}** "
                      f"({cost['hyperalign_over_few_shot_prompt_tokens_amortized']:.2f} with the profile's inference amortized)."]
    lines += ["", "Prompt tokens are billed ones: every call's whole prompt. \"Of them computed\" leaves out what the backend "
                  "reused from its prefix cache (best-of-N's samples share one prompt; consecutive prompts may share a "
                  "start), as the backend reported it; \"–\" where the run did not record it."]
    profiles = results.get("profiles") or {}
    if profiles:
        lines += ["", "## Profiles", "",
                  "Profile identification: a held-out text of the person matched to their own profile among the "
                  "run's profiles by its facts (code, every text: each profile's facts weighed against the run's "
                  "population; chance 1 / profiles), and by its hypotheses (one "
                  "check call per person's first held-out text, among the profiles that kept a hypothesis; its chance "
                  "and how it was read beside it) — and by its specific hypotheses, the same without those marked "
                  "generic. Shared: the share of inferred hypotheses whose statement (stemmed, "
                  "without filler) is in two or more profiles. Generic: the share the batch's generic mark flags in "
                  f"this population — shared by {GENERIC_SHARE:.0%} or more of the profiles word for word, or every one "
                  "of its words is.", "",
                  "| method | hypotheses proposed | kept | failed verification | shared | generic | facts kept | "
                  "identification by facts | chance | identification by hypotheses | by specific hypotheses | "
                  "s / profile (contrast) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for method, block in profiles.items():
            lines.append(
                f"| {method} | {_num(block['hypotheses_proposed'], 1)} | {_num(block['hypotheses_kept'], 1)} | "
                f"{_num(block['hypotheses_failed_verification'], 1)} | {block['shared_share']:.0%} | "
                f"{_share(block.get('generic_share'))} | "
                f"{_num(block['facts_kept'], 1)} | {_ci(block['identification_by_facts'])} | "
                f"{block['identification_chance']:.2f} | {_by_hypotheses(block.get('identification_by_hypotheses'))} | "
                f"{_by_hypotheses(block.get('identification_by_specific_hypotheses'))} | "
                f"{_num(block['seconds_per_profile'])} "
                f"({_num(block['contrast_seconds_per_profile'])}) |")
    shown = [name for name, drawn in plot_names(results).items() if drawn]
    lines += ["", "Plots: " + ", ".join(f"`plots/{name}.png`" for name in shown)
              + ". Every number: `results.json`, `results.csv`.", ""]
    return "\n".join(lines)


def _by_hypotheses(block: dict[str, Any] | None) -> str:
    if not block:
        return "–"
    profiles = f"{block['profiles_with_hypotheses']}/{block['profiles']} profiles with hypotheses"
    if block.get("accuracy") is None:
        return f"– ({profiles})"
    return f"{_ci(block['accuracy'])}, chance {block['chance']:.2f} ({profiles}; {block['reading']})"


def _margin_plot(second: dict[str, Any], folder: Path) -> Path:
    """The Delta margin (the primary score) per method, with the real-text ceiling and the cross-author floor; the
    legend sits outside the axes so no bar is hidden."""
    methods = [m for m, b in second["methods"].items() if b.get("delta_margin")]
    blocks = [second["methods"][m]["delta_margin"] for m in methods]
    fig, ax = plt.subplots(figsize=(1.1 * len(methods) + 4.5, 4))
    ax.bar(methods, [b["mean"] for b in blocks], color="#4C72B0",
           yerr=[[b["mean"] - b["low"] for b in blocks], [b["high"] - b["mean"] for b in blocks]], capsize=4)
    for name, style, color, label in (("ceiling_real_texts", "--", "green", "real held-out texts (ceiling)"),
                                      ("floor_other_authors", ":", "orange", "other authors' texts (floor)")):
        margin = (second.get(name) or {}).get("delta_margin")
        if margin:
            ax.axhline(margin["mean"], color=color, linestyle=style, label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_title("Delta margin: closer to the author than to the others (higher is better)")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    path = folder / "delta_margin.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plots(results: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    views = results["attribution"]["views"]
    methods = list(views["masked"]["methods"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, view in zip(axes, ("masked", "raw"), strict=True):
        means: list[float] = []
        errors: list[list[float]] = [[], []]
        for m in methods:
            acc = views[view]["methods"][m]["all"]["accuracy"] or {"mean": 0, "low": 0, "high": 0}
            means.append(acc["mean"])
            errors[0].append(acc["mean"] - acc["low"])
            errors[1].append(acc["high"] - acc["mean"])
        ax.bar(methods, means, yerr=errors, capsize=4, color="#4C72B0")
        ceiling = views[view]["ceiling_real_texts"]["accuracy"]
        if ceiling:
            ax.axhline(ceiling["mean"], color="green", linestyle="--", label="real texts (ceiling)")
        floor = views[view]["floor_opening_only"]
        if floor and floor["accuracy"]:
            ax.axhline(floor["accuracy"]["mean"], color="orange", linestyle=":", label="opening alone (floor)")
        ax.axhline(results["attribution"]["chance"], color="grey", linestyle="-.", label="chance")
        ax.set_title(f"attribution accuracy ({view})")
        ax.set_ylim(0, 1)
        ax.tick_params(axis="x", rotation=20)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    paths.append(folder / "attribution.png")
    fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)

    second = results["attribution"].get("second")
    if second:
        paths.append(_margin_plot(second, folder))

    paths.append(_cost_plot(results, folder))
    matrix = shown_win_rates(results["judge"])
    names = list(matrix)
    if not plot_names(results)["win_rates"]:
        (folder / "win_rates.png").unlink(missing_ok=True)  # a stale plot from an earlier render would mislead
        return paths
    grid = [[(matrix[r][c] or {}).get("win_rate", float("nan")) for c in names] for r in names]
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 1.2 * len(names) + 1.5))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdBu")
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_yticks(range(len(names)), names)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if value == value:  # not NaN
                ax.text(j, i, f"{value:.2f}", ha="center", va="center")
    ax.set_title("win rate of row vs column (LLM judge)")
    fig.colorbar(image)
    fig.tight_layout()
    paths.append(folder / "win_rates.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def plot_names(results: dict[str, Any]) -> dict[str, bool]:
    """Which plots a run has: the win-rate plot only where the report shows win rates."""
    matrix = shown_win_rates(results["judge"])
    return {"delta_margin": bool(results["attribution"].get("second")), "attribution": True,
            "win_rates": any(cell for cols in matrix.values() for cell in cols.values()), "tokens": True}


def _cost_plot(results: dict[str, Any], folder: Path) -> Path:
    cost = {m: c for m, c in results["cost"]["methods"].items() if c}
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(list(cost), [c["prompt_tokens_per_generation"] for c in cost.values()], label="prompt")
    ax.bar(list(cost), [c["completion_tokens_per_generation"] for c in cost.values()],
           bottom=[c["prompt_tokens_per_generation"] for c in cost.values()], label="completion")
    ax.set_title("tokens per generation")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "tokens.png", dpi=120)
    plt.close(fig)
    return folder / "tokens.png"


def write_authorship_report(folder: RunFolder, results: dict[str, Any]) -> None:
    rows = csv_rows(results)
    with folder.file("results.csv").open("w", newline="", encoding="utf-8") as sink:
        writer = csv.DictWriter(sink, fieldnames=["metric", "view", "method", "subset", "value", "low", "high", "n"])
        writer.writeheader()
        writer.writerows(rows)
    plots(results, folder.file("plots"))
    folder.file("report.md").write_text(markdown(results), encoding="utf-8")
