"""Deliberative alignment on the embedded model: 3 jailbreak users (in-the-wild templates over HarmBench and
Do-Not-Answer behaviours) × 2 requests, the benign control voices × 1 request, 4 example messages per user, methods
vanilla, spec and hyperalign, 500 tokens per answer. Resumable. Writes benchmarks/results/NAME.md and NAME.json.

    python benchmarks/deliberative_safety.py [--name deliberative-embedded-3x2] [--out runs/bench-deliberative]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from provenance import SHARED_DATA, hyperalign, run_recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="deliberative-embedded-3x2")
    parser.add_argument("--out", default="runs/bench-deliberative")
    args = parser.parse_args()
    safety = f"{SHARED_DATA}/safety"
    command = hyperalign(
        "eval", "deliberative", "--harmful", f"{safety}/harmbench/harmbench_prompts.txt,{safety}/donotanswer",
        "--templates", f"{safety}/jailbreak_templates/inthewild_jailbreak_llms.json", "--users", "3",
        "--requests-per-user", "2", "--benign-requests-per-user", "1", "--shots", "4", "--max-tokens", "500",
        "--out", args.out,
    )
    return run_recorded(args.name, "benchmarks/deliberative_safety.py", command, run_dir=Path(args.out))


if __name__ == "__main__":
    raise SystemExit(main())
