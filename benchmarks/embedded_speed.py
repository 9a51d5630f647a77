"""Why was one structured inference call ≈ 9 min in-process but ≈ 2.5 min through a llama.cpp chat server (1.5B model,
a 4.5k-token prompt)? The same request, side by side, in one run, on the llama.cpp runtime's own numbers (prompt and
decode tokens and milliseconds):

  in-process (xllamacpp), JSON schema WITH the quote menu (the embedded backend's default before this fix)
  in-process, JSON schema with the menu the backend sends now
  in-process, JSON schema without a menu
  the same llama.cpp runtime as an OpenAI-compatible HTTP server (what a "plain llama.cpp chat server" is), same
  request as the openai backend sends it, without the menu (the openai backend's default then)

    python benchmarks/embedded_speed.py [--model runs/models/…gguf] [--authors 1] [--max-tokens 700]

Writes benchmarks/results/embedded-speed.md and .json. Run it alone: llama.cpp slows ~10× when the 2 cores are shared.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from hyperalign.eval.corpus import load_corpus, make_split
from hyperalign.llm.embedded import EmbeddedBackend, _runtime
from hyperalign.pipeline.context import fit_examples
from hyperalign.pipeline.infer import InferenceOptions
from hyperalign.pipeline.propose import min_per_aspect, profile_schema, quote_menu
from hyperalign.prompts import render_messages
from models import qwen_1_5b
from provenance import ROOT, SHARED_DATA, Recorder


def request_body(examples: list[Any], menu: list[str], max_tokens: int) -> dict[str, Any]:
    options = InferenceOptions()
    schema = profile_schema(list(options.aspects), options.max_per_aspect, menu, attributes=True)
    messages = render_messages("infer_profile", examples=examples, aspects=options.aspects,
                               max_hypotheses=options.max_per_aspect,
                               min_hypotheses=min_per_aspect(options.max_per_aspect), attributes=True)
    return {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "seed": 0, "repeat_penalty": 1.1,
            "dry_multiplier": 0.8,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "infer_profile", "schema": schema.model_json_schema()}}}


def timed(label: str, call: Any) -> dict[str, Any]:
    started = time.perf_counter()
    reply = call()
    wall = time.perf_counter() - started
    timings = reply.get("timings", {})
    row = {"variant": label, "wall_s": round(wall, 1), "prompt_tokens": timings.get("prompt_n"),
           "prompt_tok_s": round(timings.get("prompt_per_second", 0), 1), "decode_tokens": timings.get("predicted_n"),
           "decode_tok_s": round(timings.get("predicted_per_second", 0), 1),
           "finish": reply["choices"][0].get("finish_reason")}
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="GGUF (default: Qwen2.5-Coder-1.5B, assembled by models.py)")
    parser.add_argument("--max-tokens", type=int, default=700)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    recorder = Recorder("embedded-speed", "benchmarks/embedded_speed.py")
    model = Path(args.model) if args.model else qwen_1_5b()
    backend = EmbeddedBackend(model=str(model), threads=args.threads)
    split = make_split(load_corpus(ROOT / SHARED_DATA / "ccat50"), authors=2, shots=7, prompts_per_author=1, seed=0)
    examples, _ = fit_examples(split.authors[0].demonstrations, backend.context_tokens, 2700)
    runtime = _runtime(backend.path, backend.context_tokens, backend.threads)
    old_menu = quote_menu(examples, 150)
    new_menu = quote_menu(examples, InferenceOptions().quote_menu_size)
    rows = []
    variants = [(f"in-process, schema with the quote menu of {len(old_menu)} sentences (the default before)", old_menu)]
    if new_menu != old_menu:
        variants.append((f"in-process, schema with the menu sent now ({len(new_menu)} sentences)", new_menu))
    variants.append(("in-process, schema without a menu", []))
    for label, menu in variants:
        body = {**request_body(examples, menu, args.max_tokens), "cache_prompt": False}  # every variant starts cold
        rows.append(timed(label, lambda body=body: runtime.chat(body)))
    address = str(runtime.server.listening_address)
    body = {**request_body(examples, [], args.max_tokens), "model": "local", "cache_prompt": False}

    def over_http() -> dict[str, Any]:
        request = urllib.request.Request(address + "/v1/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=3600) as response:  # the runtime's own loopback server
            return json.loads(response.read())

    rows.append(timed("llama.cpp HTTP server (same runtime), schema without a menu", over_http))
    lines = ["# Embedded backend speed: one structured inference call, side by side", "",
             f"Model `{model.name}`, {args.threads} threads; prompt: the single-call inference prompt over 7 CCAT50 "
             f"articles; up to {args.max_tokens} new tokens under the JSON schema; prompt cache off for every variant.",
             "", "| variant | wall s | prompt tokens | prompt tok/s | decode tokens | decode tok/s | finish |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['wall_s']} | {r['prompt_tokens']} | {r['prompt_tok_s']} | {r['decode_tokens']} | "
              f"{r['decode_tok_s']} | {r['finish']} |" for r in rows]
    lines.append("")
    recorder.write("\n".join(lines), model=str(model), rows=rows)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
