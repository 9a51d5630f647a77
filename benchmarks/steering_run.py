"""Decoding-time steering measured (issue "[2 of 5] Make a small model follow the profile"): the contrastive
profiles written with steering off, light and strong, beside few-shot, zero-shot and the paper method, on one corpus
and one split, through `benchmarks/authorship_ccat50.py` (which records the command, the code version and the
machine beside the report in benchmarks/results/NAME.*). No judge: the judge-free metrics (Delta margin, masked
attribution, copy rate) carry the comparison (the 1.5B judge fails its validity check, aaac-qwen1.5b-10x3).

`--reuse RUN.tar.gz` (or a run folder) seeds the run folder from a finished run of the same split and generator, so only the steered
generations are new: its split, its profiles (steering changes no profile, so every steering level reads the plain
`hyperalign` profiles), and its unsteered generations — a contrastive run's `hyperalign` rows as `hyperalign:steer=off`,
since a request without steering is the request generation always sent (its cache key included:
tests/test_steer.py). `--check-reuse` regenerates one reused `hyperalign:steer=off` text first and stops unless its
prompt has as many tokens and its first 200 characters come out the same, so the relabelling is checked rather than
assumed (not the whole text: llama.cpp is not bitwise deterministic once its prompt cache is reused).

The run folder is runs/NAME/ (not tracked), committed as ONE compressed file, benchmarks/runs/NAME.tar.gz, written
every `--checkpoint-minutes` and when the run stops; rerunning the command unpacks it and resumes.

    python benchmarks/steering_run.py --name aaac-steer-qwen1.5b-10x3 --corpus runs/corpora/aaac-essays \\
        --reuse benchmarks/runs/aaac-contrast-qwen1.5b-10x3.tar.gz --check-reuse \\
        --model /path/to/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf
    # a profile plus 1 or 2 real texts, beside the steered and unsteered rows of aaac-steer2:
    python benchmarks/steering_run.py --name aaac-examples-qwen1.5b-10x3 --corpus runs/corpora/aaac-essays \\
        --reuse benchmarks/runs/aaac-steer2-qwen1.5b-10x3.tar.gz --keep hyperalign:steer=light \\
        --methods hyperalign:examples=1,hyperalign:examples=2,hyperalign:steer=light,hyperalign:steer=off,few-shot,zero-shot \\
        --model /path/to/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf
    # the copy guard: examples=1 guarded, beside the same rows made before the guard existed:
    python benchmarks/steering_run.py --name aaac-guard-qwen1.5b-10x3 --corpus runs/corpora/aaac-essays \\
        --reuse benchmarks/runs/aaac-examples-qwen1.5b-10x3.tar.gz --keep hyperalign:steer=light \\
        --relabel "hyperalign:examples=1->hyperalign:examples=1:copy-guard=off" \\
        --methods hyperalign:examples=1,hyperalign:examples=1:copy-guard=off,hyperalign:steer=light,few-shot,zero-shot
    # the revision pass beside the steered rows it revises:
    python benchmarks/steering_run.py --name aaac-revise-qwen1.5b-10x3 --corpus runs/corpora/aaac-essays \\
        --reuse benchmarks/runs/aaac-guard-qwen1.5b-10x3.tar.gz --keep hyperalign:steer=light \\
        --methods hyperalign:steer=light,hyperalign:revise,few-shot,zero-shot
    # the same after the word mapping left out bare forms (the first run's steered rows made again):
    python benchmarks/steering_run.py --name aaac-steer2-qwen1.5b-10x3 --corpus runs/corpora/aaac-essays \\
        --reuse benchmarks/runs/aaac-steer-qwen1.5b-10x3.tar.gz --model /path/to/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contrast_run import eval_command, prepared, run_parser, run_with_checkpoints
from run_archive import opened_run

ROOT = Path(__file__).resolve().parents[1]
METHODS = "hyperalign:steer=off,hyperalign:steer=light,hyperalign:steer=strong,few-shot,zero-shot,hyperalign:paper"
RENAMED = {"hyperalign": "hyperalign:steer=off"}
# What steering cannot have changed (a seed run's steered rows are made again: the steering code may differ).
UNSTEERED = ("hyperalign:steer=off", "few-shot", "zero-shot", "hyperalign:paper")
SAME_START = 200  # characters


def seed_from(earlier: Path, folder: Path, keep: tuple[str, ...] = (), relabel: dict[str, str] | None = None) -> None:
    with opened_run(earlier) as previous:
        folder.mkdir(parents=True)
        shutil.copy(previous / "split.json", folder / "split.json")
        shutil.copytree(previous / "profiles", folder / "profiles")
        config = json.loads((previous / "config.json").read_text(encoding="utf-8"))
        config["methods"] = METHODS.split(",")
        (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        rows = []
        for line in (previous / "generations.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["method"] = {**RENAMED, **(relabel or {})}.get(row["method"], row["method"])
                row["key"] = f"{row['method']}|{row['item_id']}"
                if row["method"] in UNSTEERED or row["method"] in keep:
                    rows.append(row)
    with (folder / "generations.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(f"seeded {folder} from {earlier}: split, profiles, {len(rows)} generations "
          f"(hyperalign as hyperalign:steer=off)", file=sys.stderr)


def check_reuse(folder: Path, model: str, max_tokens: int) -> bool:
    """Regenerate the first reused hyperalign:steer=off text; whether it comes out identical."""
    sys.path.insert(0, str(ROOT / "src"))
    from hyperalign.api import HyperAlign
    from hyperalign.eval.runs import RunFolder
    from hyperalign.eval.split_file import read_split
    from hyperalign.llm import LLMClient
    from hyperalign.llm.embedded import EmbeddedBackend
    from hyperalign.pipeline.generate import GenerationOptions
    from hyperalign.pipeline.steer import SteerLevel
    from hyperalign.profiles.model import Profile

    rows = [json.loads(line) for line in (folder / "generations.jsonl").read_text(encoding="utf-8").splitlines()]
    row = next(r for r in rows if r["method"] == "hyperalign:steer=off")
    split = read_split(RunFolder(folder))
    author = next(a for a in split.authors if a.author == row["author"])
    item = next(i for i in author.held_out if i.id == row["item_id"])
    profile = Profile.load(folder / "profiles" / f"{row['author']}.json")
    ha = HyperAlign(LLMClient(EmbeddedBackend(model=model)))
    fresh = ha.generate(profile, item.prompt, options=GenerationOptions(max_tokens=max_tokens, steer=SteerLevel.OFF))
    # llama.cpp is not bitwise deterministic where its prompt cache is reused (two fresh generations of one request
    # in one process ran 331 and 388 tokens, alike for their first ~300 characters): the start is what must match.
    agree = next((i for i, (x, y) in enumerate(zip(fresh.text, row["output"], strict=False)) if x != y),
                 min(len(fresh.text), len(row["output"])))
    same = fresh.usage.prompt_tokens == row["prompt_tokens"] and agree >= SAME_START
    print(f"reuse check on {row['key']}: {'same' if same else 'DIFFERENT'} request and start (the texts agree for "
          f"{agree} characters; {fresh.usage.prompt_tokens} prompt tokens now, {row['prompt_tokens']} then)", file=sys.stderr)
    return same


def main() -> int:
    parser = run_parser(__doc__, METHODS)
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--reuse", type=Path, help="a finished run (.tar.gz or folder) of the same corpus, split and generator")
    parser.add_argument("--check-reuse", action="store_true")
    parser.add_argument("--keep", default="", help="steered methods whose reused rows stand (made by this code)")
    parser.add_argument("--relabel", default="", help="OLD->NEW,...: reused rows of method OLD stand as NEW (a method "
                        "whose meaning changed: what it was made with, named as such)")
    args = parser.parse_args()
    keep = tuple(m for m in args.keep.split(",") if m)
    relabel = dict(pair.split("->", 1) for pair in args.relabel.split(",") if pair)
    keep += tuple(relabel.values())
    folder, target = prepared(args.name,
                              lambda folder: seed_from(args.reuse, folder, keep, relabel) if args.reuse else None)
    if args.check_reuse and not check_reuse(folder, args.model, args.max_tokens):
        return 1
    return run_with_checkpoints(eval_command(args, folder, args.max_tokens), folder, target, args.checkpoint_minutes)


if __name__ == "__main__":
    raise SystemExit(main())
