"""What `hyperalign batch generate` adds over the raw OpenAI client: 2,000 distinct requests at 64-way concurrency
against a mock OpenAI-compatible server with a fixed latency, side by side and alternating in one run:

  raw      AsyncOpenAI, 64 tasks each sending chat.completions.create (nothing else)
  batch    the batch path itself (LocalEngine + abatch_generate: prompt rendering, the LLM client's semaphore,
           in-flight de-duplication, usage accounting, one JSONL row written per result), in this process
  cli      the whole `hyperalign batch generate` command as a process (start-up and reading the file included)

    python benchmarks/batch_overhead.py [--requests 2000] [--concurrency 64] [--latency 0.2] [--rounds 2]

Goal: batch >= 95% of raw. Writes benchmarks/results/batch-overhead.md and .json. Run it alone."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai

from hyperalign import HyperAlign
from hyperalign.batch.engines import LocalEngine
from hyperalign.batch.records import RequestRecord
from hyperalign.batch.run import abatch_generate, plan_generate
from hyperalign.batch.work import BatchOptions
from hyperalign.config import load_settings
from hyperalign.io import JsonlLog
from hyperalign.pipeline.generate import GenerationOptions, Strategy
from mock_openai import load_options, start_mock
from provenance import ROOT, Recorder
from service_overhead import wait_until_up


def tasks(count: int, round_number: int, variant: str) -> list[str]:
    # Distinct in every round and variant: nothing may come from a cache or be de-duplicated.
    return [f"Write note {n} of round {round_number} ({variant}) to the relief keeper." for n in range(count)]


async def raw(base_url: str, prompts: list[str], concurrency: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0)
    queue = list(prompts)

    async def worker() -> None:
        while queue:
            prompt = queue.pop()
            await client.chat.completions.create(model="mock", messages=[{"role": "user", "content": prompt}],
                                                 max_tokens=50, temperature=0.0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    await client.close()
    return seconds


async def batch(base_url: str, prompts: list[str], concurrency: int, folder: Path, label: str) -> float:
    settings = load_settings(backend="openai", base_url=base_url, model="mock", no_cache=True, concurrency=concurrency)
    options = BatchOptions(generation=GenerationOptions(max_tokens=50))
    engine = LocalEngine(HyperAlign.from_settings(settings), options, concurrency)
    requests = [(f"r{n}", RequestRecord(user_id="u", task=p)) for n, p in enumerate(prompts)]
    works, _, _ = plan_generate(requests, None, set(), Strategy.ZERO_SHOT)
    log = JsonlLog(folder / f"{label}.jsonl")
    started = time.perf_counter()
    finished = [d async for d in abatch_generate(engine, works, log, "bench")]
    seconds = time.perf_counter() - started
    assert len(finished) == len(prompts) and all(d.ok for d in finished), [d.error for d in finished if not d.ok][:3]
    return seconds


def cli(base_url: str, prompts: list[str], concurrency: int, folder: Path, label: str) -> float:
    requests = folder / f"{label}-requests.jsonl"
    requests.write_text("".join(json.dumps({"id": f"r{n}", "user_id": "u", "task": p, "strategy": "zero-shot"}) + "\n"
                                for n, p in enumerate(prompts)), encoding="utf-8")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hyperalign", "--backend", "openai", "--base-url", base_url, "--model",
                    "mock", "--no-cache", "--concurrency", str(concurrency), "batch", "generate", str(requests),
                    "-o", str(folder / f"{label}.jsonl"), "--max-tokens", "50"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    args = load_options(__doc__ or "", "batch-overhead")
    recorder = Recorder(args.name, "benchmarks/batch_overhead.py")
    folder = Path(tempfile.mkdtemp(prefix="hyperalign-batch-bench-"))
    upstream, port = start_mock(args.latency, ROOT)
    base_url = f"http://127.0.0.1:{port}/v1"
    rows: list[dict[str, Any]] = []
    try:
        wait_until_up(f"http://127.0.0.1:{port}/")
        asyncio.run(raw(base_url, tasks(200, 0, "warm-up"), args.concurrency))
        for round_number in range(1, args.rounds + 1):
            for variant in ("raw", "batch", "cli"):
                prompts = tasks(args.requests, round_number, variant)
                label = f"{variant}-{round_number}"
                if variant == "raw":
                    seconds = asyncio.run(raw(base_url, prompts, args.concurrency))
                elif variant == "batch":
                    seconds = asyncio.run(batch(base_url, prompts, args.concurrency, folder, label))
                else:
                    seconds = cli(base_url, prompts, args.concurrency, folder, label)
                row = {"round": round_number, "variant": variant, "seconds": round(seconds, 2),
                       "requests_per_s": round(args.requests / seconds, 1)}
                print(row, flush=True)
                rows.append(row)
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)

    def median(variant: str) -> float:
        return statistics.median(r["requests_per_s"] for r in rows if r["variant"] == variant)

    lines = [f"# Batch overhead: {args.requests} requests at {args.concurrency}-way, mock upstream with "
             f"{args.latency * 1000:.0f} ms latency, {args.rounds} rounds (medians)", "",
             f"Command: `{recorder.command}`", "", "| variant | requests/s | vs raw AsyncOpenAI |", "|---|---|---|"]
    labels = {"raw": "raw AsyncOpenAI", "batch": "batch path (in process)", "cli": "`hyperalign batch generate` (process, start-up included)"}
    summary = {v: {"requests_per_s": median(v), "ratio": round(median(v) / median("raw"), 3)} for v in labels}
    lines += [f"| {labels[v]} | {s['requests_per_s']:.0f} | {s['ratio']:.1%} |" for v, s in summary.items()]
    lines += ["", "| round | variant | seconds | requests/s |", "|---|---|---|---|"]
    lines += [f"| {r['round']} | {r['variant']} | {r['seconds']} | {r['requests_per_s']} |" for r in rows]
    recorder.write("\n".join(lines) + "\n", configuration=vars(args), summary=summary, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
