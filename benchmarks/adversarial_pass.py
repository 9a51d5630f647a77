"""Run the adversarial pass (tests/adversarial_cases.py) against the installed `hyperalign` and write the counts per
category and outcome to benchmarks/results/NAME.md (+ NAME.json).

    python benchmarks/adversarial_pass.py [--name adversarial-pass] [--label "what HYPERALIGN_UNDER_TEST runs"]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from provenance import ROOT, Recorder

sys.path.insert(0, str(ROOT / "tests"))

from adversarial_cases import cases, run_case
from adversarial_service_cases import ServiceHarness, run_service_case
from adversarial_service_cases import cases as service_cases

OUTCOMES = ["ok", "traceback", "bug", "hang", "silent_accept", "unexpected_reject", "wrong_message", "multi_line",
            "wrong_status", "lost_work", "leak", "crashed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="adversarial-pass", help="writes benchmarks/results/NAME.md and NAME.json")
    parser.add_argument("--label", default="this checkout",
                        help="what HYPERALIGN_UNDER_TEST runs, for the report (e.g. 'hyperalign at commit e899523')")
    args = parser.parse_args()
    recorder = Recorder(args.name, "benchmarks/adversarial_pass.py")
    started = time.monotonic()
    results: list[tuple[Any, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, case in enumerate(cases()):
            outcome, detail = run_case(case, Path(tmp) / f"case-{index}")
            results.append((case, outcome, detail))
            print(f"{outcome:>17}  {case.category:<12} {case.name}" + (f"  — {detail}" if outcome != "ok" else ""))
        # Over HTTP: two `hyperalign serve` processes, every case against them.
        with ServiceHarness(Path(tmp) / "service") as harness:
            for service_case in service_cases():
                outcome, detail = run_service_case(service_case, harness)
                results.append((service_case, outcome, detail))
                print(f"{outcome:>17}  {service_case.category:<12} {service_case.name}"
                      + (f"  — {detail}" if outcome != "ok" else ""))
    elapsed = time.monotonic() - started
    by_category: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for case, outcome, _ in results:
        by_category[case.category][outcome] += 1
    total = collections.Counter(outcome for _, outcome, _ in results)
    used = [o for o in OUTCOMES if total[o]] or ["ok"]
    lines = [
        "# Adversarial pass", "",
        f"Command: `{recorder.command}` (fake backend, one `hyperalign` process per CLI case; the HTTP cases against "
        f"two `hyperalign serve` processes; {len(results)} cases, {elapsed:.0f} s). Program under test: "
        f"{args.label}.", "",
        "Each case is a hostile input or a fault; `ok` means the expected behaviour: on the command line, exit 2 "
        "with exactly one line naming the input (or exit 0 where the input is legal), no traceback, no hang, "
        "nothing finished lost; over HTTP, a 4xx in OpenAI's error shape for a client's mistake and a 502/503 for "
        "the upstream's, never a 500, a secret or a deleted text.", "",
        "| category | cases | " + " | ".join(used) + " |", "|---|---|" + "---|" * len(used),
    ]
    for category, counts in by_category.items():
        lines.append(f"| {category} | {sum(counts.values())} | " + " | ".join(str(counts[o]) for o in used) + " |")
    lines.append(f"| **all** | {len(results)} | " + " | ".join(str(total[o]) for o in used) + " |")
    failures = [(c, o, d) for c, o, d in results if o != "ok"]
    if failures:
        lines += ["", "## Not ok", ""] + [f"- {c.category} / {c.name}: {o}: {d}" for c, o, d in failures]
    lines.append("")
    recorder.write("\n".join(lines), program_under_test=args.label, counts=dict(total))
    print(f"\n{dict(total)}")

if __name__ == "__main__":
    main()
