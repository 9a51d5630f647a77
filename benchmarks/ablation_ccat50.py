"""Ablation on CCAT50 with the embedded model: shots 1, 2, 4 × one-pass hyperalign, hypothesis selection and a
3-hypothesis budget; 3 authors × 2 prompts, 300 tokens per output. Resumable. Writes benchmarks/results/NAME.md, its
plot and NAME.json (command, configuration, code version, machine, time).

    python benchmarks/ablation_ccat50.py [--name ablation-embedded-3x2] [--out runs/bench-ablation]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from provenance import SHARED_DATA, hyperalign, run_recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="ablation-embedded-3x2")
    parser.add_argument("--out", default="runs/bench-ablation")
    args = parser.parse_args()
    command = hyperalign(
        "eval", "ablation", "--corpus", f"{SHARED_DATA}/ccat50", "--shots", "1,2,4", "--methods",
        "hyperalign,hyperalign:select,hyperalign:budget=3", "--authors", "3", "--prompts-per-author", "2",
        "--max-tokens", "300", "--out", args.out,
    )
    return run_recorded(args.name, "benchmarks/ablation_ccat50.py", command, run_dir=Path(args.out),
                        copy={"plots/ablation.png": f"{args.name}.png"})


if __name__ == "__main__":
    raise SystemExit(main())
