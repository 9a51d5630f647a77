"""Small CCAT50 authorship evaluation on the embedded model (not a test): 5 authors x 2 prompts, 7 shots.

    python benchmarks/authorship_ccat50.py [--corpus ../shared/data/ccat50] [--out runs/bench-ccat50] [-- extra CLI args]

Resumable (rerun to continue). Prints the report: attribution (masked/raw, ceiling, floor), judge win rates,
and tokens per generation side by side, with the hyperalign / few-shot prompt-token ratio."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "ccat50"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-ccat50-embedded"))
    parser.add_argument("--authors", type=int, default=5)
    parser.add_argument("--prompts-per-author", type=int, default=2)
    parser.add_argument("extra", nargs="*", help="passed to `hyperalign eval authorship` (e.g. --model PATH.gguf)")
    args = parser.parse_args()
    command = [
        sys.executable, "-m", "hyperalign.cli", "eval", "authorship", "--corpus", args.corpus, "--out", args.out,
        "--authors", str(args.authors), "--prompts-per-author", str(args.prompts_per_author), "--shots", "7",
        "--methods", "hyperalign,few-shot,zero-shot", "--seed", "0", *args.extra,
    ]
    started = time.perf_counter()
    status = subprocess.call(command)
    print(f"\nwall time: {time.perf_counter() - started:.0f} s")
    report = Path(args.out) / "report.md"
    if status == 0 and report.exists():
        print(report.read_text(encoding="utf-8"))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
