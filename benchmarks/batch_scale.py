"""Users per hour for `batch infer` on this machine: the local engine, and Ray with 1 and 2 workers, side by side and
alternating in one run, against the mock upstream answering as a model that follows the prompts would
(mock_openai.py, MOCK_REPLIES=profiles: every inference call a real one makes — the default voice, the proposal,
the verification — each after a fixed latency), so what is measured is hyperalign's batch machinery on 2 cores,
not a model.

  local     LocalEngine + abatch_infer in this process (what `batch infer` runs, minus its start-up)
  ray-1     RayEngine with 1 worker (an async actor with its own LLM client) on a local Ray with 2 CPUs
  ray-2     RayEngine with 2 workers
  cli       the whole `hyperalign batch infer` command as a process (local engine; start-up included)

    python benchmarks/batch_scale.py [--users 120] [--concurrency 64] [--latency 0.2] [--rounds 2]

Writes benchmarks/results/batch-scale.md and .json. Run it alone (it loads both cores)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hyperalign import HyperAlign
from hyperalign.batch.engines import Engine, LocalEngine, RayEngine
from hyperalign.batch.records import UserRecord
from hyperalign.batch.run import abatch_infer, plan_infer
from hyperalign.batch.targets import ProfileFolder
from hyperalign.batch.work import BatchOptions
from hyperalign.config import Settings, load_settings
from mock_openai import start_mock
from provenance import ROOT, Recorder
from service_overhead import wait_until_up

sys.path.insert(0, str(ROOT / "tests"))
from service_support import QUOTE  # the mock's responder quotes it from the users' texts

VARIANTS = ("local", "ray-1", "ray-2", "cli")


def users(count: int, label: str) -> list[dict[str, Any]]:
    """Distinct users (ids and texts differ in every round and variant), three short texts each."""
    return [{"id": f"{label}-u{n}", "examples": [
        {"prompt": f"Note {k} to the relief keeper", "text": f"Fog again ({label}, {n}). The lamp turned "
         f"{400 + 7 * n + k} times last night and the log says so. {QUOTE}"} for k in range(3)]}
        for n in range(count)]


async def run_engine(engine: Engine, rows: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    records = [(r["id"], UserRecord.model_validate(r)) for r in rows]
    target = ProfileFolder(folder)
    works, _ = plan_infer(records, target)
    started = time.perf_counter()
    finished = [d async for d in abatch_infer(engine, works, target)]
    seconds = time.perf_counter() - started
    failed = [d.error for d in finished if not d.ok]
    assert not failed, failed[:3]
    return {"seconds": seconds, "calls": sum(d.llm_calls for d in finished),
            "prompt_tokens": sum(d.prompt_tokens for d in finished),
            "completion_tokens": sum(d.completion_tokens for d in finished)}


def run_cli(settings: Settings, rows: list[dict[str, Any]], folder: Path, concurrency: int) -> dict[str, Any]:
    source = folder.with_suffix(".jsonl")
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hyperalign", "--backend", "openai", "--base-url",
                           str(settings.base_url), "--model", "mock", "--no-cache", "--concurrency", str(concurrency),
                           "batch", "infer", str(source), "--out", str(folder)], cwd=ROOT, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-500:]
    # "LLM calls: N (cache hits: 0) · tokens: P prompt + C completion" (its last line)
    summary = done.stderr.strip().splitlines()[-1]
    calls = int(summary.split("LLM calls: ")[1].split()[0].replace(",", ""))
    tokens = summary.split("tokens: ")[1].replace(",", "").split()
    return {"seconds": seconds, "calls": calls, "prompt_tokens": int(tokens[0]), "completion_tokens": int(tokens[3])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="batch-scale")
    args = parser.parse_args()
    recorder = Recorder(args.name, "benchmarks/batch_scale.py")
    import ray

    upstream, port = start_mock(args.latency, ROOT, replies="profiles")
    settings = load_settings(backend="openai", base_url=f"http://127.0.0.1:{port}/v1", model="mock", no_cache=True,
                             concurrency=args.concurrency)
    folder = Path(tempfile.mkdtemp(prefix="hyperalign-batch-scale-"))
    options = BatchOptions()
    rows: list[dict[str, Any]] = []
    try:
        wait_until_up(f"http://127.0.0.1:{port}/")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        asyncio.run(run_engine(LocalEngine(HyperAlign.from_settings(settings), options, args.concurrency),
                               users(10, "warm-up"), folder / "warm-up"))
        for round_number in range(1, args.rounds + 1):
            for variant in VARIANTS:
                label = f"{variant}-{round_number}"
                batch = users(args.users, label)
                if variant == "cli":
                    measured = run_cli(settings, batch, folder / label, args.concurrency)
                elif variant == "local":
                    engine: Engine = LocalEngine(HyperAlign.from_settings(settings), options, args.concurrency)
                    measured = asyncio.run(run_engine(engine, batch, folder / label))
                else:
                    engine = RayEngine(settings, options, args.concurrency, workers=int(variant[-1]))
                    asyncio.run(run_engine(engine, users(4, f"warm-{label}"), folder / f"warm-{label}"))
                    measured = asyncio.run(run_engine(engine, batch, folder / label))
                    for actor in engine.actors:
                        ray.kill(actor)
                row = {"round": round_number, "variant": variant, "users": args.users,
                       "seconds": round(measured["seconds"], 2),
                       "users_per_hour": round(args.users / measured["seconds"] * 3600),
                       "calls_per_user": round(measured["calls"] / args.users, 2),
                       "prompt_tokens_per_user": round(measured["prompt_tokens"] / args.users),
                       "completion_tokens_per_user": round(measured["completion_tokens"] / args.users),
                       "calls_per_s": round(measured["calls"] / measured["seconds"], 1)}
                print(row, flush=True)
                rows.append(row)
    finally:
        ray.shutdown()
        upstream.terminate()
        upstream.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["variant"] == variant)

    labels = {"local": "local engine (asyncio, in process)", "ray-1": "Ray, 1 worker", "ray-2": "Ray, 2 workers",
              "cli": "`hyperalign batch infer` (process, local engine, start-up included)"}
    summary = {v: {"users_per_hour": median(v, "users_per_hour"), "calls_per_s": median(v, "calls_per_s"),
                   "calls_per_user": median(v, "calls_per_user")} for v in VARIANTS}
    lines = [f"# `batch infer` users per hour: {args.users} users per run, mock upstream with "
             f"{args.latency * 1000:.0f} ms latency, {args.concurrency} units in flight, {args.rounds} rounds "
             "(medians)", "", f"Command: `{recorder.command}`", "",
             "The upstream is `benchmarks/mock_openai.py` with `MOCK_REPLIES=profiles`: it answers every call of "
             "the contrastive inference (default voice, proposal, verification) as a model following the prompts "
             "would, after a fixed latency, so the numbers are hyperalign's own capacity on this machine's 2 cores "
             "(the mock runs on the same cores). With a real model the upstream sets the pace: users/hour = "
             "the upstream's calls/s ÷ calls per user × 3600 (cost-model.md).", "",
             "| engine | users/hour | LLM calls/s | calls/user |", "|---|---|---|---|"]
    lines += [f"| {labels[v]} | {s['users_per_hour']:,.0f} | {s['calls_per_s']:.0f} | {s['calls_per_user']:.1f} |"
              for v, s in summary.items()]
    lines += ["", "| round | engine | seconds | users/hour | calls/user | prompt tok/user | completion tok/user |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['round']} | {r['variant']} | {r['seconds']} | {r['users_per_hour']:,} | {r['calls_per_user']} | "
              f"{r['prompt_tokens_per_user']:,} | {r['completion_tokens_per_user']:,} |" for r in rows]
    recorder.write("\n".join(lines) + "\n", configuration=vars(args), summary=summary, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
