"""The overview's cross-corpus tables: each method's Delta margin on every corpus it was measured on, one row per
method, for one generator and one design (authors × prompts, shots, seed, token budget), so that a method is read
across genres at a glance instead of across a dozen run pages.

A cell comes from the latest run of that corpus and design that measured the method with a Delta margin — latest by
when the run was made (its result file's first commit; `finished_at` says when it was last re-read, which a re-render
of an old run would move): a method's name can mean newer code in a newer run; the runs each table draws on are listed under it, linked to their pages. Runs of one corpus and
design share its split (the same seed draws the same authors and prompts), so the cells of one column are about the
same prompts even where they come from different runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from formatting import Json, interval, table

LAST = ("few-shot", "zero-shot")  # the baselines close each table, the methods under study come first
# (result stem, result JSON, the run folder's results.json, when the run was made: any sortable string)
Run = tuple[str, Json, Json, str]
DESIGN = ("model", "authors", "prompts_per_author", "shots", "seed", "max_tokens")


def _design(config: Json) -> tuple[Any, ...]:
    return tuple(config.get(key) for key in DESIGN)


def _design_line(config: Json) -> str:
    return (f"`{config.get('model')}`, {config.get('authors')} authors × {config.get('prompts_per_author')} prompts, "
            f"{config.get('shots')} shots, seed {config.get('seed')}, {config.get('max_tokens')} new tokens")


def _methods_in_order(runs: list[Run]) -> list[str]:
    seen: list[str] = []
    for _, _, run, _ in runs:
        seen += [m for m in run.get("methods", []) if m not in seen]
    return [m for m in seen if m not in LAST] + [m for m in LAST if m in seen]


def _cells(runs: list[Run], corpora: list[str], methods: list[str], key: str,
           ) -> tuple[dict[tuple[str, str], str], set[str]]:
    """(method, corpus) -> the interval of the latest run that has `key` for the method; and the runs used."""
    cells: dict[tuple[str, str], str] = {}
    used: set[str] = set()
    for stem, result, run, _ in sorted(runs, key=lambda entry: entry[3], reverse=True):
        corpus = Path(str(result["run_config"].get("corpus", ""))).name
        second = run.get("attribution", {}).get("second", {}).get("methods", {})
        for method in methods:
            value = second.get(method, {}).get(key)
            if corpus in corpora and (method, corpus) not in cells and isinstance(value, dict):
                cells[(method, corpus)] = interval(value, 3)
                used.add(stem)
    return cells, used


def _ceiling(runs: list[Run], corpus: str) -> str:
    for _, result, run, _ in sorted(runs, key=lambda entry: entry[3], reverse=True):
        if Path(str(result["run_config"].get("corpus", ""))).name == corpus:
            value = run.get("attribution", {}).get("second", {}).get("ceiling_real_texts", {}).get("delta_margin")
            if isinstance(value, dict):
                return interval(value, 3)
    return "–"


def _judge_validity(runs: list[Run], corpora: list[str]) -> list[list[str]]:
    """One row per corpus whose latest judged run checked its judge: the judge, how often the real held-out text
    beat zero-shot's output, and whether that passed (issue "[3 of 5]": a judge proves itself in every run)."""
    rows: dict[str, list[str]] = {}
    for stem, result, run, _ in sorted(runs, key=lambda entry: entry[3], reverse=True):
        corpus = Path(str(result["run_config"].get("corpus", ""))).name
        judge = run.get("judge") or {}
        check = judge.get("validity")
        if corpus not in corpora or corpus in rows or not isinstance(check, dict):
            continue
        verdicts = (judge.get("calibration") or {}).get("verdicts", "text")
        share = f"{check['real_wins']:.2f} [{check['low']:.2f}, {check['high']:.2f}] (n={check['n']})"
        rows[corpus] = [corpus, f"`{judge.get('judge', '')}`, {verdicts}", share,
                        "passed" if check.get("passed") else f"**failed** (needs ≥ {check['threshold']:.2f})",
                        f"[{stem}]({stem}.md)"]
    return [rows[c] for c in corpora if c in rows]


def across_corpora(runs: list[Run]) -> str:
    """`runs`: every authorship evaluation (`Run`). One section
    per design measured on at least two corpora; empty when there is none."""
    by_design: dict[tuple[Any, ...], list[Run]] = {}
    for entry in runs:
        by_design.setdefault(_design(entry[1]["run_config"]), []).append(entry)
    parts: list[str] = []
    for group in by_design.values():
        corpora = sorted({Path(str(result["run_config"].get("corpus", ""))).name for _, result, _, _ in group})
        methods = _methods_in_order(group)
        margins, used = _cells(group, corpora, methods, "delta_margin")
        measured = sorted({corpus for _, corpus in margins})
        if len(measured) < 2:
            continue
        paired_key = "delta_margin_vs_few-shot"
        paired, paired_used = _cells(group, measured, methods, paired_key)
        rows = [[f"`{m}`", *(margins.get((m, c), "–") for c in measured)] for m in methods
                if any((m, c) in margins for c in measured)]
        rows.append(["*real held-out texts (ceiling)*", *(_ceiling(group, c) for c in measured)])
        parts += [f"### Across corpora: {_design_line(group[0][1]['run_config'])}\n",
                  "Delta margin (Burrows' Delta to the other authors minus Delta to the target; higher is more the "
                  "target's), bootstrap 95% intervals; each cell from the latest run of that corpus that measured "
                  "the method.\n", table(["method", *measured], rows)]
        paired_rows = [[f"`{m}`", *(paired.get((m, c), "–") for c in measured)] for m in methods
                       if any((m, c) in paired for c in measured)]
        if paired_rows:
            parts += ["\nThe method's margin minus few-shot's on the same prompts (paired; above 0: closer to the "
                      "person than few-shot):\n", table(["method", *measured], paired_rows)]
        clean, clean_used = _cells(group, measured, methods, f"{paired_key}_without_copying")
        clean_rows = [[f"`{m}`", *(clean.get((m, c), "–") for c in measured)] for m in methods
                      if any((m, c) in clean for c in measured)]
        if clean_rows:
            parts += ["\nThe same difference on the prompts where neither output copies the person's texts (word "
                      "8-grams over the run's threshold): how much of few-shot's lead is its copies:\n",
                      table(["method", *measured], clean_rows)]
            used |= clean_used
        checks = _judge_validity(group, measured)
        if checks:
            parts += ["\nThe judge's validity check on each corpus (the author's real held-out text against "
                      "zero-shot's output, both orders; a judge that fails shows no win rate):\n",
                      table(["corpus", "judge", "real text wins", "check", "run"], checks)]
        made = {stem: when[:10] for stem, _, _, when in group}
        sources = ", ".join(f"[{stem}]({stem}.md) ({made[stem]})" for stem in sorted(used | paired_used, key=lambda stem: made[stem]))
        parts.append(f"\nFrom the runs (made on): {sources}. A method other than the baselines measured only in an "
                     "older run is that run's version of it.\n")
    return "\n".join(parts)
