"""Do models follow a number better than an adjective? The same measured style facts shown to the generator three
ways, on the same CCAT50 prompts, backend and decoding (greedy):

- numbers:    the facts as hyperalign states them ("Sentences average 27 words; half are between 21 and 33 words long.")
- adjectives: the same facts with the numbers replaced by a qualitative word relative to the other authors of the
              run ("Sentences: very long compared with most writers.") — how a person or an LLM usually says it
- none:       the same ghost-writing prompt with an empty profile

Each output is scored by facts adherence (pipeline/adherence.py) against its author's facts, and per metric by the
distance |z| from the author's mean in the author's own spreads (lower is closer). The paired difference numbers −
adjectives is bootstrapped over prompts. The profiles hold facts only (no LLM hypotheses), so nothing else differs.
The adjectives' reference (the other authors' texts) is the benchmark's, never the product's: hyperalign's facts
depend on one person's texts alone.

    python benchmarks/facts_following.py [--qwen | --model PATH.gguf] [--authors 5] [--prompts-per-author 2]

Writes benchmarks/results/NAME.md/.json (NAME: facts-following-<model>). Completions are cached in
runs/cache/facts-following.sqlite3, so a killed run resumes. Run it alone: llama.cpp slows ~10× when the 2 cores
are shared.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import mean, pstdev

from hyperalign import HyperAlign
from hyperalign.eval.corpus import load_corpus, make_split
from hyperalign.eval.stats import bootstrap
from hyperalign.llm.embedded import EmbeddedBackend
from hyperalign.pipeline.adherence import check_facts, facts_adherence
from hyperalign.pipeline.facts import measure, style_facts
from hyperalign.pipeline.generate import GenerationOptions
from hyperalign.profiles.model import Fact, Profile, examples_hash
from models import qwen_1_5b
from provenance import ROOT, SHARED_DATA, Recorder

# metric -> (what is described, word for above the others, word for below)
WORDS = {
    "sentence_words": ("Sentences", "long", "short"),
    "paragraph_sentences": ("Paragraphs", "long", "short"),
    "word_letters": ("Words", "long", "short"),
    "vocabulary": ("Vocabulary", "varied", "repetitive"),
    "contractions": ("Contractions (don't, it's)", "frequent", "rare"),
    "numbers_as_digits": ("Numbers written as digits", "frequent", "rare"),
    "first_person": ("First-person words (I, we, my)", "frequent", "rare"),
    "second_person": ("Second-person words (you, your)", "frequent", "rare"),
    "lowercase_starts": ("Sentences starting in lower case", "frequent", "rare"),
    "caps_words": ("Words in ALL CAPS", "frequent", "rare"),
}
REPORTED = ["sentence_words", "word_letters", "paragraph_sentences", "punctuation:comma", "contractions",
            "first_person", "punctuation:quote"]


def adjective_statement(fact: Fact, population: tuple[float, float]) -> str:
    """The fact without its numbers: a qualitative word for where the author sits among the run's authors."""
    if not any(c.isdigit() for c in fact.statement):  # "Never uses semicolons." has no number to replace
        return fact.statement
    metric = fact.measure.metric
    kind, _, argument = metric.partition(":")
    if kind == "uses":
        return "Uses some words far more often than general English does: " + \
            ", ".join(f"“{w}”" for w in argument.split("|")) + "."
    if kind in ("opens_with", "ends_with"):
        return f"{'Opens' if kind == 'opens_with' else 'Ends'} texts with “{argument}”."
    subject, more, less = WORDS.get(metric) or (argument.capitalize() + " (punctuation)", "frequent", "rare")
    if kind == "punctuation":
        subject = {"comma": "Commas", "semicolon": "Semicolons", "colon": "Colons", "dash": "Dashes",
                   "exclamation": "Exclamation marks", "question": "Question marks", "ellipsis": "Ellipses",
                   "parenthesis": "Parentheses", "quote": "Quotation marks"}[argument]
    others_mean, others_sd = population
    z = (fact.measure.mean - others_mean) / others_sd if others_sd else 0.0
    if abs(z) < 0.5:
        return f"{subject}: about as {more} as most writers'."
    degree = "very " if abs(z) >= 1.5 else "fairly "
    return f"{subject}: {degree}{more if z > 0 else less} compared with most writers."


def metric_z(text: str, facts: list[Fact], metric: str) -> float | None:
    fact = next((f for f in facts if f.measure.metric == metric), None)
    if fact is None:
        return None
    value = measure(metric, text)
    return None if value is None else min(4.0, abs(value - fact.measure.mean) / fact.measure.spread)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="GGUF file (default: the embedded SmolLM2-135M)")
    parser.add_argument("--qwen", action="store_true", help="Qwen2.5-Coder-1.5B (assembled by benchmarks/models.py)")
    parser.add_argument("--authors", type=int, default=5)
    parser.add_argument("--prompts-per-author", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    embedded = EmbeddedBackend(model=str(qwen_1_5b()) if args.qwen else args.model, threads=2)
    recorder = Recorder(args.name or f"facts-following-{Path(embedded.path).stem}", "benchmarks/facts_following.py")
    cache = ROOT / "runs" / "cache" / "facts-following.sqlite3"
    cache.parent.mkdir(parents=True, exist_ok=True)
    ha = HyperAlign.from_config(embedded, cache=str(cache))
    generation = GenerationOptions(max_tokens=args.max_tokens)
    split = make_split(load_corpus(ROOT / SHARED_DATA / "ccat50"), authors=args.authors, shots=7,
                       prompts_per_author=args.prompts_per_author, seed=0)

    facts = {a.author: style_facts([d.text for d in a.demonstrations]) for a in split.authors}
    texts = [d.text for a in split.authors for d in a.demonstrations]
    population: dict[str, tuple[float, float]] = {}
    for metric in {f.measure.metric for fs in facts.values() for f in fs}:
        values = [v for v in (measure(metric, t) for t in texts) if v is not None]
        population[metric] = (mean(values), pstdev(values)) if values else (0.0, 0.0)

    rows = []
    for author in split.authors:
        own = facts[author.author]
        base = Profile(user_id=author.author, facts=own, examples_hash=examples_hash(author.demonstrations),
                       n_examples=len(author.demonstrations), backend="none", model="none",
                       prompt_version="facts-only")
        worded = [f.model_copy(update={"statement": adjective_statement(f, population[f.measure.metric])})
                  for f in own]
        variants = {"numbers": base, "adjectives": base.model_copy(update={"facts": worded}),
                    "none": base.model_copy(update={"facts": []})}
        for item in author.held_out:
            for variant, profile in variants.items():
                text = ha.generate(profile, item.prompt, options=generation).text
                row = {"author": author.author, "item": item.id, "variant": variant,
                       "adherence": facts_adherence(check_facts(text, own)) or 0.0, "words": len(text.split())}
                row.update({m: metric_z(text, own, m) for m in REPORTED})
                rows.append(row)
                print(row, flush=True)
    reference = [{"adherence": facts_adherence(check_facts(i.reference, facts[a.author])) or 0.0,
                  **{m: metric_z(i.reference, facts[a.author], m) for m in REPORTED}}
                 for a in split.authors for i in a.held_out]

    def summary(values: list[float]) -> str:
        if not values:
            return "–"
        b = bootstrap(values, seed=0)
        return f"{b.mean:.2f} [{b.low:.2f}, {b.high:.2f}]"

    order = ["numbers", "adjectives", "none"]
    by = {v: [r for r in rows if r["variant"] == v] for v in order}
    lines = [f"# Facts as numbers vs as adjectives ({embedded.model}, in-process)", "",
             f"CCAT50, {len(split.authors)} authors × {args.prompts_per_author} held-out prompts, 7 demonstrations, "
             f"seed 0, greedy, {args.max_tokens} tokens; profiles hold the measured facts only. "
             f"Command: `{recorder.command}`.", "",
             "Facts adherence (0–1, higher is closer; 95% bootstrap intervals) and mean |z| per metric (distance "
             "from the author's mean in the author's own spreads, capped at 4; lower is closer).", "",
             "| facts shown as | n | adherence | " + " | ".join(f"\\|z\\| {m}" for m in REPORTED) + " |",
             "|---|---|---|" + "---|" * len(REPORTED)]
    for variant in order:
        mine = by[variant]
        cells = [summary([r[m] for r in mine if r[m] is not None]) for m in REPORTED]
        lines.append(f"| {variant} | {len(mine)} | {summary([r['adherence'] for r in mine])} | " + " | ".join(cells) + " |")
    cells = [summary([r[m] for r in reference if r[m] is not None]) for m in REPORTED]
    lines.append(f"| (the real held-out texts) | {len(reference)} | {summary([r['adherence'] for r in reference])} | "
                 + " | ".join(cells) + " |")
    pairs = {(r["author"], r["item"]): r for r in by["numbers"]}
    difference = [pairs[(r["author"], r["item"])]["adherence"] - r["adherence"] for r in by["adjectives"]]
    versus_none = [pairs[(r["author"], r["item"])]["adherence"] - r["adherence"] for r in by["none"]]
    lines += ["", f"Paired difference in adherence, numbers − adjectives: {summary(difference)}; "
              f"numbers − none: {summary(versus_none)} (bootstrap over prompts).", ""]
    example = next(iter(facts.values()))
    lines += ["Example of one author's facts in both wordings:", "", "| numbers | adjectives |", "|---|---|"]
    for fact in example[:8]:
        lines.append(f"| {fact.statement} | {adjective_statement(fact, population[fact.measure.metric])} |")
    lines.append("")
    print("\n".join(lines))
    recorder.write("\n".join(lines), rows=rows, references=reference,
                   config={"authors": args.authors, "prompts_per_author": args.prompts_per_author,
                           "max_tokens": args.max_tokens, "model": embedded.model})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
