"""Which reranker orders a prompt's outputs like the evaluation does (issue "[2 of 5]", §2: rerank by the person's
margin)? Code only, no LLM call, on committed authorship runs: for every held-out prompt, the outputs every method of
the run wrote for it are scored three ways — the evaluation's Delta margin (eval/authorship/delta.py: against the
run's other authors, which no reranker may see), the facts' margin over the default voice (pipeline/adherence.py, what
`rerank=margin` ranks by), and the word-use margin over the default voice (pipeline/word_use.py, `rerank=word-margin`:
measured here from the author's demonstrations and the default voice stored in their profile, as inference does).

Per run: the mean Spearman correlation, prompt by prompt, of each reranker's score with the Delta margin, and what
picking each prompt's best output by the reranker gains in Delta margin over the prompt's mean output (the oracle:
picking by the Delta margin itself). Once among all the run's outputs, once among the hyperalign variants' outputs
only (nearer to best-of-N, whose candidates are samples of one method). Masked char-3-gram attribution is not
recomputed here; the word-use margin is in Delta's family of features, so a gain measured by Delta margin alone would
flatter it — generation runs with `rerank=word-margin` report both.

    python benchmarks/word_use_rerank.py benchmarks/runs/aaac-contrast-qwen1.5b-10x3.tar.gz \\
        benchmarks/runs/aaac-examples-qwen1.5b-10x3.tar.gz benchmarks/runs/aaac-steer2-qwen1.5b-10x3.tar.gz \\
        benchmarks/runs/aaac-revise-qwen1.5b-10x3.tar.gz benchmarks/runs/beer-contrast-qwen1.5b-10x3.tar.gz \\
        --corpus aaac=runs/corpora/aaac-essays --corpus beer=runs/corpora/beer-forum
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from scipy.stats import spearmanr

from hyperalign.eval.authorship.delta import DeltaModel
from hyperalign.eval.authorship.stylometry import strip_opening
from hyperalign.eval.runs import RunFolder
from hyperalign.eval.split_file import read_split
from hyperalign.eval.stats import bootstrap
from hyperalign.pipeline.adherence import check_facts, facts_margin
from hyperalign.pipeline.word_use import measure_word_use, word_margin
from hyperalign.profiles.model import Profile
from provenance import Recorder
from run_archive import opened_run

SCORES = ("facts margin", "word-use margin")
POOLS = ("all outputs", "hyperalign variants")


def scored_outputs(run: Path, corpus: Path | None) -> dict[str, list[dict[str, Any]]]:
    """Prompt id -> each output's method and its three scores, for the authors whose profile has a default voice."""
    split = read_split(RunFolder(run), corpus)
    delta = DeltaModel({a.author: a.classifier_texts for a in split.authors})
    stored = {p.stem: Profile.load(p) for p in sorted((run / "profiles").glob("*.json"))}
    items, uses = {}, {}
    for a in split.authors:
        profile = stored.get(a.author)
        if profile is None or profile.contrast is None:
            continue
        uses[a.author] = (measure_word_use([d.text for d in a.demonstrations], [c.text for c in profile.contrast.texts]),
                          profile.facts)
        items.update({i.id: (a.author, i) for i in a.held_out})
    outputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in (run / "generations.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["item_id"] not in items:
            continue
        author, item = items[row["item_id"]]
        text = strip_opening(row["output"], item.opening)
        use, facts = uses[author]
        outputs[row["item_id"]].append({
            "method": row["method"], "delta margin": delta.score(text, author)["margin"],
            "facts margin": facts_margin(check_facts(text, facts)) or 0.0,
            "word-use margin": (word_margin(text, use) if use else None) or -4.0,
        })
    return outputs


def agreement(outputs: dict[str, list[dict[str, Any]]], pool: str) -> dict[str, Any]:
    block: dict[str, Any] = {"prompts": 0, "outputs per prompt": 0.0}
    correlations: dict[str, list[float]] = {s: [] for s in SCORES}
    gains: dict[str, list[float]] = {s: [] for s in (*SCORES, "oracle")}
    sizes = []
    for rows in outputs.values():
        rows = [r for r in rows if pool == POOLS[0] or r["method"].startswith("hyperalign")]
        if len(rows) < 3:
            continue
        sizes.append(len(rows))
        truth = [r["delta margin"] for r in rows]
        average = mean(truth)
        for score in SCORES:
            values = [r[score] for r in rows]
            if len(set(values)) > 1:
                correlations[score].append(float(spearmanr(truth, values)[0]))
            gains[score].append(truth[max(range(len(rows)), key=lambda i: values[i])] - average)
        gains["oracle"].append(max(truth) - average)
    block["prompts"], block["outputs per prompt"] = len(sizes), mean(sizes) if sizes else 0.0
    block["spearman"] = {s: bootstrap(v, seed=0).as_dict() if v else None for s, v in correlations.items()}
    block["gain"] = {s: bootstrap(v, seed=0).as_dict() if v else None for s, v in gains.items()}
    return block


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run folders or their .tar.gz")
    parser.add_argument("--corpus", action="append", default=[], metavar="PREFIX=FOLDER",
                        help="the corpus the runs named PREFIX-… read their texts from (default: the run's config)")
    parser.add_argument("--name", default="word-use-rerank")
    args = parser.parse_args()
    corpora = dict(c.split("=", 1) for c in args.corpus)
    recorder = Recorder(args.name, "benchmarks/word_use_rerank.py")
    runs: dict[str, Any] = {}
    for path in args.runs:
        name = path.name.removesuffix(".tar.gz")
        corpus = corpora.get(name.split("-", 1)[0])
        with opened_run(path) as run:
            outputs = scored_outputs(run, Path(corpus) if corpus else None)
        runs[name] = {pool: agreement(outputs, pool) for pool in POOLS}

    def cell(interval: dict[str, Any] | None, sign: bool = False) -> str:
        if interval is None:
            return "–"
        form = "{:+.3f}" if sign else "{:.2f}"
        return f"{form.format(interval['mean'])} [{form.format(interval['low'])}, {form.format(interval['high'])}]"

    lines = ["# Which reranker orders outputs like the evaluation's Delta margin", "",
             "Per held-out prompt of each committed run, the outputs its methods wrote, scored by the evaluation's "
             "Delta margin (against the run's other authors) and by the two rerankers best-of-N can use (against the "
             "default voice only). *Spearman*: the mean, over prompts, of each reranker's rank correlation with the "
             "Delta margin. *Gain*: the Delta margin of the output each picks minus the prompt's mean output "
             "(oracle: picking by the Delta margin itself). 95% bootstrap intervals over prompts. Code only, no LLM "
             "call; the word-use margin shares Delta's features (common-word rates), so these gains are an upper "
             "view — generation runs report masked attribution beside them.", "",
             "| run | outputs | prompts × outputs | Spearman: facts margin | Spearman: word-use margin | gain: facts "
             "margin | gain: word-use margin | gain: oracle |", "|---|---|---|---|---|---|---|---|"]
    for name, pools in runs.items():
        for pool, b in pools.items():
            lines.append(f"| {name} | {pool} | {b['prompts']} × {b['outputs per prompt']:.1f} | "
                         f"{cell(b['spearman']['facts margin'])} | {cell(b['spearman']['word-use margin'])} | "
                         f"{cell(b['gain']['facts margin'], True)} | {cell(b['gain']['word-use margin'], True)} | "
                         f"{cell(b['gain']['oracle'], True)} |")
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    recorder.write(markdown, runs=runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
