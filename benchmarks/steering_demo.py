"""What each steering lever does to the embedded default model, on the demo's person (bev, the bundled texts):
her profile inferred once, then several tasks written zero-shot, with the profile in the prompt only (steer off),
and steered at light and strong with the opening put in front by code or prefilled — every other setting equal,
greedy decoding. Per output: facts adherence (pipeline/adherence.py) to bev's measured facts, each habit's value,
the word count, whether the output echoes its own prompt (the profile's markup or headings: a derailed text) and
whether it keeps to the task (a word of the task's subject in it).

    python benchmarks/steering_demo.py [--model PATH.gguf] [--max-tokens 200]

Writes benchmarks/results/steering-demo-<model>.md/.json. Completions are cached in runs/cache/steering-demo.sqlite3;
run it alone (llama.cpp slows ~10x when the 2 cores are shared).
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from statistics import mean

from hyperalign import HyperAlign
from hyperalign.llm.embedded import EmbeddedBackend
from hyperalign.pipeline.adherence import check_facts, facts_adherence
from hyperalign.pipeline.distinctive import format_value
from hyperalign.pipeline.facts import measure, metric_label
from hyperalign.pipeline.generate import GenerationOptions, Strategy
from hyperalign.pipeline.steer import plan
from hyperalign.profiles.model import read_examples
from provenance import ROOT, Recorder

# task -> words of its subject: an output without any of them has left the task
TASKS = {
    "Write an email to the volunteers asking them to bring spare seeds to the spring seed swap.": ("seed",),
    "Write a note to the volunteers about the broken shed lock.": ("lock", "shed"),
    "Write an email reminding volunteers that the compost bins need turning this weekend.": ("compost", "bin"),
    "Write a short message telling volunteers the tool shed will be closed on Monday for repairs.": ("shed", "tool"),
}
ECHO = ("<profile>", "Measured from their texts", "likely role", "user_text", "Ghost-writing")
CONFIGS = [("zero-shot", Strategy.ZERO_SHOT, "off", "code"), ("prompt only", Strategy.HYPERALIGN, "off", "code"),
           ("light", Strategy.HYPERALIGN, "light", "code"), ("strong", Strategy.HYPERALIGN, "strong", "code"),
           ("light + prefill", Strategy.HYPERALIGN, "light", "prefill"),
           ("strong + prefill", Strategy.HYPERALIGN, "strong", "prefill")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a GGUF file (default: the embedded SmolLM2-135M)")
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()
    embedded = EmbeddedBackend(model=args.model)
    recorder = Recorder(f"steering-demo-{Path(embedded.path).stem}", "benchmarks/steering_demo.py")
    cache = ROOT / "runs" / "cache" / "steering-demo.sqlite3"
    cache.parent.mkdir(parents=True, exist_ok=True)
    ha = HyperAlign.from_config(embedded, cache=str(cache))
    with resources.as_file(resources.files("hyperalign") / "data" / "demo_user.jsonl") as path:
        examples = read_examples(path)
    profile = ha.infer_profile("bev", examples)
    facts = profile.facts
    rows = []
    for name, strategy, steer, opening in CONFIGS:
        for task, subject in TASKS.items():
            options = GenerationOptions(max_tokens=args.max_tokens, steer=steer, opening=opening)
            generation = ha.generate(profile if strategy is Strategy.HYPERALIGN else None, task, strategy,
                                     options=options)
            text = generation.text
            rows.append({"config": name, "task": task, "text": text, "words": len(text.split()),
                         "adherence": facts_adherence(check_facts(text, facts)) or 0.0,
                         "echoes_prompt": any(marker in text for marker in ECHO),
                         "on_task": any(word in text.lower() for word in subject),
                         "habits": {f.measure.metric: measure(f.measure.metric, text) for f in facts},
                         "levers": [str(lever) for lever in generation.levers]})
            print(f"{name:<17} adherence {rows[-1]['adherence']:.2f}  echo {rows[-1]['echoes_prompt']!s:<5} "
                  f"on task {rows[-1]['on_task']!s:<5} {text[:70]!r}", flush=True)
    lines = [f"# Steering on {embedded.model}: bev, {len(TASKS)} tasks", "",
             f"Command: `{recorder.command}`. Greedy decoding, {args.max_tokens} tokens at most. Levers of bev's "
             "profile: " + " · ".join(str(lever) for lever in plan(profile, "strong", embedded.capabilities).levers)
             + ".", "",
             "| configuration | adherence (mean) | echoes its prompt | on task | words (mean) |",
             "|---|---|---|---|---|"]
    for name, *_ in CONFIGS:
        mine = [r for r in rows if r["config"] == name]
        lines.append(f"| {name} | {mean(r['adherence'] for r in mine):.2f} | {sum(r['echoes_prompt'] for r in mine)}"
                     f" of {len(mine)} | {sum(r['on_task'] for r in mine)} of {len(mine)} | "
                     f"{mean(r['words'] for r in mine):.0f} |")
    lines += ["", "Each habit, mean over the tasks (bev's own value first):", "",
              "| habit | bev | " + " | ".join(name for name, *_ in CONFIGS) + " |",
              "|---|---|" + "---|" * len(CONFIGS)]
    for fact in facts:
        metric = fact.measure.metric
        cells = []
        for name, *_ in CONFIGS:
            values = [r["habits"][metric] for r in rows if r["config"] == name and r["habits"][metric] is not None]
            cells.append(format_value(metric, mean(values)) if values else "–")
        lines.append(f"| {metric_label(metric)} | {format_value(metric, fact.measure.mean)} | " + " | ".join(cells)
                     + " |")
    recorder.write("\n".join(lines) + "\n", rows=rows, model=embedded.model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
