"""CCAT50 authorship evaluation on the embedded model: 5 authors x 2 prompts, 7 shots, seed 0, methods hyperalign,
few-shot and zero-shot (add `--methods ...,import:FILE.jsonl` for another system's outputs). Resumable: rerun to
continue. Writes benchmarks/results/NAME.md (+ NAME.json: command, configuration, code version, machine, time).

    python benchmarks/authorship_ccat50.py [--name ccat50-embedded-5x2] [--out runs/bench-ccat50-embedded] [-- extra]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from provenance import SHARED_DATA, hyperalign, run_recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="ccat50-embedded-5x2")
    parser.add_argument("--corpus", default=f"{SHARED_DATA}/ccat50")
    parser.add_argument("--out", default="runs/bench-ccat50-embedded")
    parser.add_argument("--authors", type=int, default=5)
    parser.add_argument("--prompts-per-author", type=int, default=2)
    parser.add_argument("--methods", default="hyperalign,few-shot,zero-shot")
    parser.add_argument("extra", nargs="*", help="passed to `hyperalign eval authorship` (e.g. --model PATH.gguf)")
    args = parser.parse_args()
    command = hyperalign(
        "eval", "authorship", "--corpus", args.corpus, "--out", args.out, "--authors", str(args.authors),
        "--prompts-per-author", str(args.prompts_per_author), "--shots", "7", "--methods", args.methods, "--seed", "0",
        *args.extra,
    )
    return run_recorded(args.name, "benchmarks/authorship_ccat50.py", command, run_dir=Path(args.out),
                        copy={"plots/attribution.png": f"{args.name}-attribution.png",
                              "plots/delta_margin.png": f"{args.name}-delta-margin.png"})


if __name__ == "__main__":
    raise SystemExit(main())
