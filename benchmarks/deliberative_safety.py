"""Deliberative alignment: jailbreak users (in-the-wild templates over HarmBench and Do-Not-Answer behaviours), the
benign control voices, 4 example messages per user, methods vanilla, spec and hyperalign; the answering model is the
judge. Default: the embedded model, 3 users × 2 requests, 1 benign request, 500 tokens per answer; `--qwen` the
issue's run (Qwen2.5-Coder-1.5B, 20 users × 3, 3 benign requests, 400 tokens). Resumable. Writes
benchmarks/results/NAME.md and NAME.json.

    python benchmarks/deliberative_safety.py [--name deliberative-embedded-3x2] [--out runs/bench-deliberative]
    python benchmarks/deliberative_safety.py --qwen --name deliberative-qwen1.5b-20x3 --out runs/delib-qwen1.5b-20x3
    # the specification written as worked cases beside the rule list (issue [3 of 5] §4, CADA), resuming that run:
    python benchmarks/deliberative_safety.py --qwen --name deliberative-qwen1.5b-20x3 --out runs/delib-qwen1.5b-20x3 \
        --methods vanilla,spec,hyperalign,spec:cases

The run folder is committed as benchmarks/runs/delib-qwen1.5b-20x3.tar.gz; unpack it into runs/ to resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models import qwen_1_5b
from provenance import SHARED_DATA, hyperalign, run_recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="deliberative-embedded-3x2")
    parser.add_argument("--out", default="runs/bench-deliberative")
    parser.add_argument("--qwen", action="store_true", help="Qwen2.5-Coder-1.5B, 20 users x 3, 3 benign requests")
    parser.add_argument("--methods", default="vanilla,spec,hyperalign")
    args = parser.parse_args()
    safety = f"{SHARED_DATA}/safety"
    size = (["--users", "20", "--requests-per-user", "3", "--benign-requests-per-user", "3", "--max-tokens", "400"]
            if args.qwen else
            ["--users", "3", "--requests-per-user", "2", "--benign-requests-per-user", "1", "--max-tokens", "500"])
    model = ["--model", str(qwen_1_5b()), "--cache", f"{args.out}.sqlite3"] if args.qwen else []
    command = hyperalign(
        "eval", "deliberative", "--harmful", f"{safety}/harmbench/harmbench_prompts.txt,{safety}/donotanswer",
        "--templates", f"{safety}/jailbreak_templates/inthewild_jailbreak_llms.json", *size, "--shots", "4",
        *model, "--methods", args.methods, "--out", args.out,
    )
    return run_recorded(args.name, "benchmarks/deliberative_safety.py", command, run_dir=Path(args.out))


if __name__ == "__main__":
    raise SystemExit(main())
