"""Contrastive profiles verified by the label-probability checker, beside the same people's profiles from an
earlier run (whose checker sampled letters): how many hypotheses now pass, and which.

For the first `--authors` people of the earlier run's split, infer the contrastive profile on the embedded model
through the completion cache: the default voice is the same requests as in that run (cache hits), and so are the
proposal and its evidence repairs while their prompts and schemas are unchanged — since the statement pattern
(pipeline/propose.py::STATEMENT_PATTERN) they are new requests, and the comparison is of proposal and checker
together. Each profile is saved as runs/NAME/profiles/AUTHOR.json
beside a copy of the split; the earlier run's profiles of those people are copied in as `hyperalign:text`
(contrastive, sampled-letter checker) and `hyperalign:paper`. Resumable: a saved profile is not inferred again.
At the end, the profile-level table of `profile_stats.py` goes to benchmarks/results/NAME.{md,json}.

    python benchmarks/verify_logprobs.py --from benchmarks/runs/aaac-contrast-qwen1.5b-10x3.tar.gz --name aaac-verify-logprobs \\
        --authors 5
    # each text read alone with each hypothesis (pipeline/verify.py, `verification="pointwise"`):
    python benchmarks/verify_logprobs.py --from runs/beer-contrast-qwen1.5b-10x3 --name beer-verify-pointwise \\
        --authors 5 --verification pointwise
    # today's default (hypotheses that explain measured facts, checked by them) against aaac-default's profiles:
    python benchmarks/verify_logprobs.py --from benchmarks/runs/aaac-default-qwen1.5b-10x3.tar.gz \\
        --name aaac-measured-hypotheses --authors 5 --reuse-contrast
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hyperalign import HyperAlign
from hyperalign.eval.runs import RunFolder
from hyperalign.eval.split_file import read_split
from hyperalign.pipeline.options import InferenceOptions
from hyperalign.profiles.model import Profile
from provenance import RESULTS, ROOT, code_version, machine
from run_archive import opened_run

MODEL = "runs/models/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", type=Path, required=True, help="an earlier contrastive run (folder or .tar.gz)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--authors", type=int, default=5)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--verification", choices=("pairwise", "pointwise"), default="pairwise",
                        help="pairwise: both orders of a pair; pointwise: each text alone")
    parser.add_argument("--reuse-contrast", action="store_true",
                        help="the earlier profile's default voice is reused (InferenceOptions.contrast), not "
                             "generated again: for a run whose completion cache is gone")
    args = parser.parse_args()
    pointwise = args.verification == "pointwise"
    folder = ROOT / "runs" / args.name
    (folder / "profiles").mkdir(parents=True, exist_ok=True)
    with opened_run(args.source) as source:
        # The split and the config that names its corpus: profile_stats.py reads the split of this folder too.
        for name in ("split.json", "config.json"):
            shutil.copy(source / name, folder / name)
        split = read_split(RunFolder(folder))
        authors = split.authors[: args.authors]
        for author in authors:
            for method_folder, target in (("", "hyperalign_text"), ("hyperalign_paper", "hyperalign_paper")):
                earlier = source / "profiles" / method_folder / f"{author.author}.json"
                if earlier.exists():
                    (folder / "profiles" / target).mkdir(exist_ok=True)
                    shutil.copy(earlier, folder / "profiles" / target / earlier.name)
    ha = HyperAlign.from_config("embedded", model=args.model, cache=True)
    # The earlier run's generation settings: the default voice is generated with them, so its requests (and the
    # proposal built on its texts) are the same ones, answered from the cache.
    earlier_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    ha.generation = ha.generation.model_copy(update={"max_tokens": earlier_config["max_tokens"]})
    started = time.perf_counter()
    for author in authors:
        path = folder / "profiles" / f"{author.author}.json"
        if path.exists():
            continue
        earlier = folder / "profiles" / "hyperalign_text" / f"{author.author}.json"
        contrast = Profile.load(earlier).contrast if args.reuse_contrast and earlier.exists() else None
        profile = ha.infer_profile(author.author, author.demonstrations,
                                   options=InferenceOptions(verification=args.verification, contrast=contrast))
        profile.save(path)
        verification = profile.report.verification
        print(f"{author.author}: kept {len(profile.inferred_hypotheses)} of {profile.report.proposed} "
              f"({verification})", flush=True)
    wall = time.perf_counter() - started
    # Only the authors done in every method count in the table (profile_stats.py restricts to them).
    stats = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_stats.py"), str(folder), "--json"],
                           check=True, capture_output=True, text=True).stdout
    table = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_stats.py"), str(folder)],
                           check=True, capture_output=True, text=True).stdout
    kept = {}
    replayed = 0  # profiles whose every LLM call was a completion-cache hit: their seconds are not inference time
    for author in authors:
        profile = Profile.load(folder / "profiles" / f"{author.author}.json")
        usage = profile.report.usage
        replayed += bool(usage.cache_hits and not usage.llm_calls)
        kept[author.author] = {
            "verification": profile.report.verification,
            "kept": [{"statement": h.statement, "discrimination": h.discrimination.model_dump()
                      if h.discrimination else None,
                      "explains": next((f.statement for f in profile.facts if f.id == h.measured_by), None)}
                     for h in profile.inferred_hypotheses],
        }
    command = "python benchmarks/verify_logprobs.py " + shlex.join(sys.argv[1:])
    record = {"report": f"benchmarks/results/{args.name}.md", "script": "benchmarks/verify_logprobs.py",
              "command": command, "wall_time_s": round(wall, 1), "code": code_version(), "machine": machine(),
              "model": Path(args.model).name, "profiles": json.loads(stats), "kept_hypotheses": kept}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    checker = ("label-probability checker reading each text alone (pointwise)" if pointwise
               else "label-probability checker (calibrated for position)")
    lines = [f"# Contrastive verification from label probabilities: {args.name}", "",
             f"`{command}` on `{Path(args.model).name}` (embedded). `hyperalign`: verified by the {checker}; "
             "`hyperalign:text`: the contrastive profiles of "
             f"{args.source.name.removesuffix('.tar.gz')} (their proposals and checker); `hyperalign:paper`: HyPerAlign's "
             "one pass. The proposals are the same requests only while the proposal's prompt and schema are unchanged "
             "(module docstring).", "", table.strip(), "",
             *([f"{replayed} of {len(authors)} `hyperalign` profiles were replayed from the completion cache (every "
                "LLM call a hit): their s / profile is not the cost of inferring them.", ""] if replayed else []),
             "## Kept hypotheses", ""]
    for author, block in kept.items():
        bias = (f"mean P(Yes) = {block['verification'].get('mean_p_yes', float('nan')):.2f}" if pointwise else
                f"position bias P(A) = {block['verification'].get('position_bias_p_a', float('nan')):.2f}")
        lines.append(f"- **{author}** ({block['verification'].get('kept', 0):.0f} kept by the checker, "
                     f"{block['verification'].get('measured', 0):.0f} by measurement, {bias}):")
        lines += [f"  - {h['statement']} (person {h['discrimination']['person']}, default "
                  f"{h['discrimination']['contrast']}, undecided {h['discrimination']['undecided']})"
                  for h in block["kept"] if h["discrimination"]]
        lines += [f"  - {h['statement']} (checked by measurement: {h['explains']})"
                  for h in block["kept"] if h.get("explains")]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
