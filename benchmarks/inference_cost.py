"""What inferring one profile costs, and how many hypotheses survive the evidence check — the single-call proposal
against the paper's call per aspect, side by side on the same authors, backend and model, with no completion cache:
prompt tokens (what an endpoint without prefix caching processes) against the examples' own tokens, completion tokens,
calls, wall time; hypotheses proposed, supported at once, asked for again and recovered, and the survival rate.

    python benchmarks/inference_cost.py [--model runs/models/…gguf | --qwen] [--authors 3] [--server] [--name NAME]

--server runs the model behind llama.cpp's OpenAI-compatible HTTP server and infers through the openai backend (the
setting in which all 34 hypotheses were once dropped), instead of in-process. Writes benchmarks/results/NAME.md/.json.
Run it alone: llama.cpp slows ~10× when the 2 cores are shared.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from hyperalign import HyperAlign, InferenceOptions
from hyperalign.eval.corpus import load_corpus, make_split
from hyperalign.llm.embedded import EmbeddedBackend, _runtime
from hyperalign.prompts import render_messages
from models import qwen_1_5b
from provenance import ROOT, SHARED_DATA, Recorder


def examples_tokens(ha: HyperAlign, examples: list[Any]) -> int:
    """The examples block's own tokens, as the model's tokenizer counts them (a 1-token completion of it alone)."""
    from hyperalign.llm import CompletionRequest

    messages = [{"role": "user", "content": render_messages("infer_attributes", examples=examples)[1]["content"]}]
    completion = ha.client.backend.complete(CompletionRequest(messages=messages, max_tokens=1))
    return completion.usage.prompt_tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="GGUF file (default: the embedded SmolLM2-135M)")
    parser.add_argument("--qwen", action="store_true", help="Qwen2.5-Coder-1.5B (assembled by benchmarks/models.py)")
    parser.add_argument("--authors", type=int, default=3)
    parser.add_argument("--server", action="store_true", help="through llama.cpp's HTTP server and the openai backend")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    model = str(qwen_1_5b()) if args.qwen else args.model
    embedded = EmbeddedBackend(model=model, threads=2)
    recorder = Recorder(args.name or f"inference-cost-{Path(embedded.path).stem}{'-server' if args.server else ''}",
                        "benchmarks/inference_cost.py")
    if args.server:
        address = _runtime(embedded.path, embedded.context_tokens, embedded.threads).server.listening_address
        ha = HyperAlign.from_config("openai", base_url=f"{address}/v1", model="local", cache=False,
                                    context_tokens=embedded.context_tokens)
    else:
        ha = HyperAlign.from_config(embedded, cache=False)
    split = make_split(load_corpus(ROOT / SHARED_DATA / "ccat50"), authors=max(2, args.authors), shots=7,
                       prompts_per_author=1, seed=0)
    rows = []
    for author in split.authors[: args.authors]:
        tokens = examples_tokens(ha, author.demonstrations)
        for proposal in ("single", "per-aspect"):
            started = time.perf_counter()
            profile = ha.infer_profile(author.author, author.demonstrations,
                                       options=InferenceOptions(proposal=proposal))  # type: ignore[arg-type]
            wall = time.perf_counter() - started
            r = profile.report
            used = r.usage  # every call of this inference
            row = {"author": author.author, "proposal": proposal, "examples_tokens": tokens,
                   "prompt_tokens": used.prompt_tokens, "completion_tokens": used.completion_tokens,
                   "calls": used.llm_calls, "wall_s": round(wall, 1), "proposed": r.proposed,
                   "supported": len(profile.inferred_hypotheses), "reasked": r.reasked, "recovered": r.recovered,
                   "too_few": r.too_few, "near_matches": sum(1 for h in profile.inferred_hypotheses for e in h.evidence
                                                             if e.near_match), "facts": len(profile.facts)}
            row["prompt_over_examples"] = round(row["prompt_tokens"] / tokens, 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = [f"# Profile inference: one call against a call per aspect ({embedded.model}"
             f"{', through llama.cpp server + openai backend' if args.server else ', in-process'})", "",
             f"CCAT50, 7 demonstrations per author, seed 0; no completion cache. Command: "
             f"`{recorder.command}`.", "",
             "| author | proposal | examples' tokens | prompt tokens | × examples | completion tokens | calls | wall s | "
             "proposed | supported | asked again | recovered | near matches |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['author']} | {r['proposal']} | {r['examples_tokens']:,} | {r['prompt_tokens']:,} | "
              f"{r['prompt_over_examples']} | {r['completion_tokens']:,} | {r['calls']} | {r['wall_s']} | {r['proposed']} | "
              f"{r['supported']} | {r['reasked']} | {r['recovered']} | {r['near_matches']} |" for r in rows]
    for proposal in ("single", "per-aspect"):
        mine = [r for r in rows if r["proposal"] == proposal]
        proposed, supported = sum(r["proposed"] for r in mine), sum(r["supported"] for r in mine)
        lines.append(f"\n**{proposal}**: prompt tokens {sum(r['prompt_tokens'] for r in mine) / sum(r['examples_tokens'] for r in mine):.2f}× "
                     f"the examples'; survival {supported}/{proposed} = {supported / max(1, proposed):.0%}; "
                     f"{sum(r['wall_s'] for r in mine) / len(mine):.0f} s per profile.")
    lines.append("")
    recorder.write("\n".join(lines), rows=rows)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
