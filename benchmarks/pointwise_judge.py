"""A pointwise authorship judge, checked the way every judge of the evaluation is (issue "[3 of 5]" §2).

The pairwise `style` judge, calibrated for position, fails its validity check on every corpus with the 1.5B (the
author's real held-out text beats zero-shot's output about half the time). This tries the other shape: one text at a
time beside another text of the author (the built-in judge `same-author`: "was this written by the same author?"),
read as P(Yes) from the first output token (`Judge.point_score`). No second text is shown, so no position
can be preferred. The check is the evaluation's own: the real held-out text against zero-shot's output on the same
task, the author's first demonstration as the reference; the real text wins a task when its P(Yes) is higher (a tie
within `POINTWISE_TIE` counts ½), and the judge passes at the evaluation's threshold (eval/judge.py `VALIDITY_THRESHOLD`, its
bootstrap interval above 0.5). Other methods' outputs (`--methods`) get their mean P(Yes) and the share of tasks
where they beat zero-shot — numbers that mean something only where the check passed.

Reads a finished run folder (or its .tar.gz); generates nothing. One judge call per text, served from the LLM cache
when repeated.

    python benchmarks/pointwise_judge.py --run benchmarks/runs/ccat50-contrast-qwen1.5b-10x3.tar.gz \\
        --name pointwise-judge-ccat50-qwen1.5b --methods few-shot,hyperalign:excerpts=8
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from hyperalign import HyperAlign
from hyperalign.eval.judge import POINTWISE_TIE, VALIDITY_THRESHOLD, Judge, passes
from hyperalign.eval.runs import RunFolder
from hyperalign.eval.split_file import read_split
from hyperalign.eval.stats import bootstrap
from provenance import Recorder
from run_archive import opened_run

JUDGE = "same-author"  # built in: eval/judges/same-author
MODEL = "runs/models/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"
AGAINST = "zero-shot"


def interval(values: list[float]) -> dict[str, float]:
    found = bootstrap(values)
    return {"mean": round(found.mean, 4), "low": round(found.low, 4), "high": round(found.high, 4), "n": found.n}


def shown(i: dict[str, float], digits: int = 2) -> str:
    return f"{i['mean']:.{digits}f} [{i['low']:.{digits}f}, {i['high']:.{digits}f}] (n={i['n']})"


async def p_yes(judge: Judge, ha: HyperAlign, reference: str, text: str) -> float:
    return (await judge.point_score(ha.client, reference, text))[0]


async def scores(run: Path, methods: list[str], model: str, per_author: int) -> dict[str, Any]:
    folder = RunFolder(run)
    split = read_split(folder)
    outputs = {(row["method"], row["item_id"]): row["output"]
               for row in (json.loads(line) for line in (run / "generations.jsonl").read_text(encoding="utf-8").splitlines()
                           if line.strip())}
    judge = Judge.load(JUDGE)
    ha = HyperAlign.from_config("embedded", model=model, cache=True)
    judge.check(ha.client)
    per_item: list[dict[str, Any]] = []
    for author in split.authors:
        if not author.demonstrations:
            continue
        reference = author.demonstrations[0].text
        for item in author.held_out[:per_author or None]:
            row: dict[str, Any] = {"item": item.id, "real text": await p_yes(judge, ha, reference, item.reference)}
            for method in [AGAINST, *methods]:
                if (method, item.id) in outputs:
                    row[method] = await p_yes(judge, ha, reference, outputs[(method, item.id)])
            per_item.append(row)
            print(json.dumps(row), flush=True)
    return {"items": per_item, "judge_model": Path(model).name}


def wins(rows: list[dict[str, Any]], x: str, y: str) -> list[float]:
    out = []
    for row in rows:
        if x in row and y in row:
            difference = row[x] - row[y]
            out.append(0.5 if abs(difference) < POINTWISE_TIE else float(difference > 0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished authorship run (folder or .tar.gz)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--methods", default="", help="other methods' outputs to score beside zero-shot")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--per-author", type=int, default=0, help="only this many held-out tasks per author (0: all)")
    args = parser.parse_args()
    recorder = Recorder(args.name, "benchmarks/pointwise_judge.py")
    methods = [m for m in args.methods.split(",") if m]
    with opened_run(args.run) as run:
        found = asyncio.run(scores(run, methods, args.model, args.per_author))
    rows = found["items"]
    check = interval(wins(rows, "real text", AGAINST))
    passed = passes(check["mean"], check["low"])
    table = ["| text | mean P(same author) | beats zero-shot's output |", "|---|---|---|"]
    record: dict[str, Any] = {"run": str(args.run), "judge": JUDGE, **found,
                              "validity": {**check, "threshold": VALIDITY_THRESHOLD, "passed": passed}, "texts": {}}
    for text in ["real text", AGAINST, *methods]:
        values = [row[text] for row in rows if text in row]
        if not values:
            continue
        mean = interval(values)
        beats = interval(wins(rows, text, AGAINST)) if text != AGAINST else None
        record["texts"][text] = {"p_same_author": mean, "beats_zero_shot": beats}
        table.append(f"| {text} | {shown(mean, 3)} | {shown(beats) if beats else '–'} |")
    lines = [f"# A pointwise authorship judge: {args.name}", "",
             f"Judge `same-author` on `{found['judge_model']}` (embedded, label probabilities): each "
             "text alone beside the author's first demonstration, P(Yes) to \"was it written by the same author?\". "
             f"Outputs of `{args.run}`; no generation.", "",
             f"Validity check ({'passed' if passed else '**failed**'}): the real held-out text's P(Yes) beat "
             f"zero-shot's on {shown(check)} of the tasks (tie = ½); a judge passes at ≥ {VALIDITY_THRESHOLD:.0%} with "
             "its 95% interval above 0.5." + ("" if passed else " The rows below carry no signal about style."), "",
             *table, ""]
    recorder.write("\n".join(lines), **record)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
