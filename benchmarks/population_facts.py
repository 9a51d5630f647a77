"""What a reference population does to a profile's facts (issue "[1 of 5] The person, not the genre"; the service
can compare every profile with the tenant's other users, service/population.py): for each author of committed runs,
the distinctive facts against the default voice alone and against the default voice *and* the run's other authors
(their demonstrations as aggregates, the author's own taken out — what `batch infer --population` and
`serve --population-texts N` do), side by side. Per corpus: facts per profile, the metrics kept most often, and profile identification by facts
(eval/authorship/profiles.py: a held-out text goes to the profile under whose facts it is likeliest against the
run's population; chance 1 / authors). Code only, no LLM call: the default voice is the one stored in each profile.

    python benchmarks/population_facts.py benchmarks/runs/aaac-verify-qwen1.5b-10x3.tar.gz \\
        benchmarks/runs/ccat50-contrast-qwen1.5b-10x3.tar.gz benchmarks/runs/beer-contrast-qwen1.5b-10x3.tar.gz
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from hyperalign.eval.authorship.profiles import Population, identify
from hyperalign.eval.runs import RunFolder
from hyperalign.eval.split_file import read_split
from hyperalign.eval.stats import bootstrap
from hyperalign.pipeline.distinctive import distinctive_facts
from hyperalign.pipeline.facts import metric_label
from hyperalign.pipeline.reference import ReferenceStats
from hyperalign.profiles.model import Profile
from provenance import Recorder
from run_archive import opened_run

VARIANTS = ("default voice", "default voice + other authors")


def corpus_block(run: Path) -> dict[str, Any]:
    split = read_split(RunFolder(run))
    stored = {p.stem: Profile.load(p) for p in sorted((run / "profiles").glob("*.json"))}
    authors = [a for a in split.authors if a.author in stored and stored[a.author].contrast is not None]
    demonstrations = {a.author: [d.text for d in a.demonstrations] for a in authors}
    everyone = ReferenceStats.of("the run's authors", [t for texts in demonstrations.values() for t in texts])
    population = Population([t for texts in demonstrations.values() for t in texts])
    held_out = [(i.reference, a.author) for a in authors for i in a.held_out]
    block: dict[str, Any] = {"authors": len(authors), "held_out_texts": len(held_out), "chance": 1 / len(authors)}
    for variant in VARIANTS:
        profiles = {}
        for a in authors:
            contrast = [c.text for c in stored[a.author].contrast.texts]  # type: ignore[union-attr]
            others = everyone.without(demonstrations[a.author]) if variant != VARIANTS[0] else None
            facts, _ = distinctive_facts(demonstrations[a.author], contrast, reference=others)
            profiles[a.author] = stored[a.author].model_copy(update={"facts": facts})
        hits = [float(identify(text, profiles, population) == author) for text, author in held_out]
        kept = Counter(metric_label(f.measure.metric) if not f.measure.metric.startswith(("uses:", "opens_with:",
                                                                                          "ends_with:"))
                       else f.measure.metric.partition(":")[0].replace("_", " ")
                       for p in profiles.values() for f in p.facts)
        block[variant] = {
            "facts_per_profile": sum(len(p.facts) for p in profiles.values()) / len(profiles),
            "profiles_without_facts": sum(not p.facts for p in profiles.values()),
            "identification_by_facts": bootstrap(hits, seed=0).as_dict(),
            "most_kept": kept.most_common(5),
        }
    return block


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run folders or their .tar.gz")
    parser.add_argument("--name", default="population-facts")
    args = parser.parse_args()
    recorder = Recorder(args.name, "benchmarks/population_facts.py")
    corpora = {}
    for path in args.runs:
        with opened_run(path) as run:
            corpora[path.name.removesuffix(".tar.gz")] = corpus_block(run)
    lines = ["# What a reference population does to a profile's facts", "",
             "Per author, the distinctive facts against the model's default voice alone, and against the default "
             "voice and the run's other authors (their demonstrations as aggregates, the author's own left out: "
             "what `batch infer --population` and `serve --population-texts N` do). Identification by facts: a "
             "held-out text goes to the profile under whose facts it is likeliest against the run's population (95% "
             "bootstrap interval). Code only: each profile's stored default voice, no LLM call.", "",
             "| run | contrast | facts / profile | profiles without facts | identification by facts | chance | "
             "kept most often |", "|---|---|---|---|---|---|---|"]
    for name, block in corpora.items():
        for variant in VARIANTS:
            v = block[variant]
            ident = v["identification_by_facts"]
            most = ", ".join(f"{label} ({n})" for label, n in v["most_kept"])
            lines.append(f"| {name} | {variant} | {v['facts_per_profile']:.1f} | {v['profiles_without_facts']} of "
                         f"{block['authors']} | {ident['mean']:.2f} [{ident['low']:.2f}, {ident['high']:.2f}] "
                         f"(n={block['held_out_texts']}) | {block['chance']:.2f} | {most} |")
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    recorder.write(markdown, corpora=corpora)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
