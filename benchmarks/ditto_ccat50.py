"""DITTO on CPU against the other methods, on the authorship benchmark's CCAT50 split (5 authors × 2 prompts, 7
shots, seed 0): train one adapter per author with a configuration (default benchmarks/configs/ditto-cpu-large.toml:
the paper's 30 SFT steps, 4 online-DPO steps), generate the held-out outputs, evaluate them beside hyperalign,
few-shot and zero-shot. Every step resumes (trained adapters and written outputs are kept). Writes
benchmarks/results/ccat50-embedded-5x2-NAME.md (+ .json) and NAME-training.md (+ .json): per-author training time,
memory, losses.

    python benchmarks/ditto_ccat50.py [--config benchmarks/configs/ditto-cpu-large.toml] [--name ditto-cpu-large]

About 65 minutes of training and 6 of generation on 2 CPU cores with the default configuration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from statistics import mean

from provenance import RESULTS, ROOT, SHARED_DATA, code_version, hyperalign, machine, relative

SPLIT = ["--corpus", f"{SHARED_DATA}/ccat50", "--authors", "5", "--prompts-per-author", "2", "--shots", "7", "--seed",
         "0"]


def authors() -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from hyperalign.train import load_split

    split = load_split(ROOT / SHARED_DATA / "ccat50", authors=5, shots=7, prompts_per_author=2, seed=0)
    return [a.author for a in split.authors]


def run(command: list[str]) -> None:
    print("$ " + " ".join(["hyperalign", *command[1:]]), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def training_table(name: str, logs: dict[str, dict]) -> str:
    lines = [f"# DITTO training on CPU, configuration `{name}`", "",
             "| author | SFT s | DPO s (incl. sampling) | training s | peak memory MB | SFT loss first 5 → last 5 steps | "
             "DPO loss, last step |", "|---|---|---|---|---|---|---|"]
    for author, log in logs.items():
        sft = [s["loss"] for s in log["steps"] if s["phase"] == "sft"]
        dpo = [s["loss"] for s in log["steps"] if s["phase"] == "dpo"]
        wall = log["wall_time_s"]
        lines.append(f"| {author} | {wall['sft']:.0f} | {wall['dpo']:.0f} | {wall['total']:.0f} | "
                     f"{log['peak_memory_mb']:,.0f} | {mean(sft[:5]):.2f} → {mean(sft[-5:]):.2f} | "
                     f"{dpo[-1] if dpo else float('nan'):.4f} |")
    total = sum(log["wall_time_s"]["total"] for log in logs.values())
    first = next(iter(logs.values()))
    lines += ["", f"Total training: {total:.0f} s ({total / 60:.1f} min) for {len(logs)} authors; device "
                  f"{first['device']}, dtype {first['dtype']}; {first['parameters']['trainable']:,} trainable of "
                  f"{first['parameters']['base']:,} parameters; versions {first['versions']}.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="benchmarks/configs/ditto-cpu-large.toml")
    parser.add_argument("--name", default="ditto-cpu-large")
    args = parser.parse_args()
    adapters = Path("runs") / f"adapters-{args.name}"
    outputs = Path("runs") / f"{args.name}.jsonl"
    logs = {}
    for author in authors():
        folder = adapters / author
        if not (ROOT / folder / "train_log.json").exists():
            run(hyperalign("train", "ditto", *SPLIT, "--author", author, "--config", args.config, "--out", str(folder)))
        logs[author] = json.loads((ROOT / folder / "train_log.json").read_text(encoding="utf-8"))
    run(hyperalign("train", "generate", *SPLIT, "--all-authors", "--adapter", str(adapters), "--config", args.config,
                   "-o", str(outputs)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}-training.md").write_text(relative(training_table(args.name, logs)), encoding="utf-8")
    (RESULTS / f"{args.name}-training.json").write_text(json.dumps(relative({
        "report": f"benchmarks/results/{args.name}-training.md", "script": "benchmarks/ditto_ccat50.py",
        "command": f"python benchmarks/ditto_ccat50.py --config {args.config} --name {args.name}",
        "config_file": args.config, "code": code_version(), "machine": machine(),
        "train_logs": {a: {k: v for k, v in log.items() if k != "steps"} for a, log in logs.items()},
    }), indent=2) + "\n", encoding="utf-8")
    return subprocess.call([sys.executable, "benchmarks/authorship_ccat50.py", "--name",
                            f"ccat50-embedded-5x2-{args.name}", "--methods",
                            f"hyperalign,few-shot,zero-shot,import:{outputs}"], cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
