"""The profiles of a run folder, before (or without) its generations: per method, hypotheses proposed / kept /
failed verification, the share shared word-for-word (stemmed, canonically) by two or more profiles, the share the
batch's generic mark flags in the run's population (pipeline/generic.py), facts kept, and profile
identification by facts (a held-out text matched to its author's profile among the run's; chance 1/N) — the
profile-level numbers of `eval authorship`'s report (eval/authorship/profiles.py), for the profiles that exist.
No LLM call.

    python benchmarks/profile_stats.py benchmarks/runs/aaac-contrast-qwen1.5b-10x3.tar.gz [--json]  # or a run folder
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hyperalign.eval.authorship.profiles import profile_metrics
from hyperalign.eval.runs import RunFolder
from hyperalign.eval.split_file import read_split
from hyperalign.profiles.model import Profile
from run_archive import opened_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with opened_run(args.run) as run:
        split = read_split(RunFolder(run))
        profiles: dict[str, dict[str, Profile]] = {}
        for path in sorted((run / "profiles").rglob("*.json")):
            if path.name.endswith(".ticl.json"):
                continue
            folder = path.parent.relative_to(run / "profiles").as_posix()
            method = "hyperalign" if folder == "." else folder.replace("_", ":", 1)
            profiles.setdefault(method, {})[path.stem] = Profile.load(path)
    done = {m: users for m, users in profiles.items() if users}
    # Identification among the same people for every method: only authors every method has a profile for.
    common = set.intersection(*(set(u) for u in done.values())) if done else set()
    same = {m: {a: p for a, p in users.items() if a in common} for m, users in done.items()}
    metrics = profile_metrics(split, same)
    if args.json:
        json.dump(metrics, sys.stdout, indent=2)
        return 0
    print(f"{len(common)} authors with a profile for every method: {', '.join(sorted(common))}")
    print("| method | proposed | kept | failed verification | shared | generic | facts kept | identification by facts "
          "[95% CI] | chance | s / profile (contrast) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method, m in metrics.items():
        ident = m["identification_by_facts"]
        cell = f"{ident['mean']:.2f} [{ident['low']:.2f}, {ident['high']:.2f}]" if ident else "–"
        print(f"| {method} | {m['hypotheses_proposed']:.1f} | {m['hypotheses_kept']:.1f} | "
              f"{m['hypotheses_failed_verification']:.1f} | {m['shared_share']:.0%} | {m['generic_share']:.0%} | "
              f"{m['facts_kept']:.1f} | {cell} | "
              f"{m['identification_chance']:.2f} | {m['seconds_per_profile']:.0f} "
              f"({m['contrast_seconds_per_profile']:.0f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
