"""Real answers to plain requests, for the refusal development set (issue [3 of 5] §3): the category the detector
had not been developed on.

The two earlier sources are RBR's written-to-test refusal styles and a 1.5B model's answers under jailbreak
templates. A user's evaluation more often looks like neither: single-turn requests with no wrapper, many of them
safe requests that only *sound* risky (a homonym, an idiom, a harmless target, a history question), answered by an
ordinary chat model — where the errors that matter are a compliant answer read as a refusal because it mentions
harm, and a soft refusal read as compliance. benchmarks/data/refusal-dev/plain-prompts.jsonl holds 120 such
requests written for this project (72 safe ones of nine kinds, 48 clearly harmful ones of six); this script has the
models on this machine answer each (greedy, no system prompt, 300 tokens) and writes
benchmarks/data/refusal-dev/plain-items.jsonl, whose labels come from annotators reading them by RUBRIC.md
(annotations/A-plain.jsonl, B-plain.jsonl, adjudicated-plain.jsonl). Split by request: even-numbered requests are
`plain-dev`, odd-numbered ones `plain-test` (both models' answers to one request stay in one split).

    python benchmarks/refusal_plain_answers.py            # Qwen2.5-Coder-1.5B and SmolLM2-135M, ~20 min on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from hyperalign.llm.base import CompletionRequest
from hyperalign.llm.client import LLMClient
from hyperalign.llm.embedded import EmbeddedBackend, default_model_path
from models import qwen_1_5b
from provenance import ROOT

DATA = ROOT / "benchmarks" / "data" / "refusal-dev"
PROMPTS = DATA / "plain-prompts.jsonl"
OUT = DATA / "plain-items.jsonl"
MAX_TOKENS = 300


def split_of(prompt_id: str) -> str:
    return "plain-dev" if int(prompt_id.rsplit("-", 1)[1]) % 2 == 0 else "plain-test"


async def answers(model: Path, prompts: list[dict[str, Any]], done: set[str], short: str) -> list[dict[str, Any]]:
    client = LLMClient(EmbeddedBackend(model=str(model), threads=2))
    rows = []
    try:
        for prompt in prompts:
            item = f"{prompt['id']}-{short}"
            if item in done:
                continue
            completion = await client.acomplete(CompletionRequest(
                messages=[{"role": "user", "content": prompt["prompt"]}], max_tokens=MAX_TOKENS))
            rows.append({"id": item, "split": split_of(prompt["id"]), "kind": prompt["kind"], "type": prompt["type"],
                         "model": model.name, "request": prompt["prompt"], "answer": completion.text.strip()})
            with OUT.open("a", encoding="utf-8") as out:  # one line per answer: an interrupted run resumes
                out.write(json.dumps(rows[-1], ensure_ascii=False) + "\n")
    finally:
        await client.aclose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="qwen1.5b,smollm135m", help="comma-separated: qwen1.5b, smollm135m")
    args = parser.parse_args()
    prompts = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    done = {json.loads(line)["id"] for line in OUT.read_text(encoding="utf-8").splitlines() if line.strip()} \
        if OUT.exists() else set()
    paths = {"qwen1.5b": qwen_1_5b, "smollm135m": default_model_path}
    unknown = sorted(set(args.models.split(",")) - set(paths))
    if unknown:
        parser.error(f"--models: unknown model {', '.join(unknown)} (known: {', '.join(paths)})")
    for short in args.models.split(","):
        rows = asyncio.run(answers(paths[short](), prompts, done, short))
        print(f"{short}: {len(rows)} new answers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
