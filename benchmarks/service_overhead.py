"""What the personalization service adds to a chat request: requests/s and p50/p99 latency at 64 concurrent clients,
straight to a mock OpenAI upstream with a fixed latency vs through `hyperalign serve` in front of the same upstream
— without an end user (pass-through) and with one whose profile is applied — measured side by side, alternating,
in one run. Goal: >= 95% of direct throughput and <= 5 ms added p50.

    python benchmarks/service_overhead.py [--requests 2000] [--concurrency 64] [--latency 0.2] [--rounds 2]

Three processes share the machine: the mock upstream, the service and this load generator; the service's own CPU
time per request (user + system, from the kernel) is the cost that does not depend on that sharing. Writes
benchmarks/results/service-overhead.md and .json. Run it alone (no model job beside it)."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil

from hyperalign.profiles.model import Evidence, Hypothesis, Profile
from hyperalign.profiles.store import Action
from hyperalign.service.tables import open_service_store
from hyperalign.service.tenants import authenticate, create_key
from hyperalign.service.users import end_user
from mock_openai import free_port, load_options, start_mock
from provenance import ROOT, Recorder

BODY = {"model": "mock", "messages": [{"role": "user", "content": "Write a two-line note to the relief keeper."}]}


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def profile(key: str) -> Profile:
    hypotheses = [Hypothesis(aspect="writing_style", statement=f"Writes short sentence number {i}.", supported=True,
                             evidence=[Evidence(quote="Gears first, opinions later.", verified=True, example_index=0)])
                  for i in range(8)]
    return Profile(user_id=key, hypotheses=hypotheses, attributes={"likely_role": "keeper"}, examples_hash="x",
                   n_examples=7, backend="bench", model="bench", prompt_version="bench")


async def load(url: str, headers: dict[str, str], requests: int, concurrency: int) -> dict[str, Any]:
    """`requests` chat completions from `concurrency` clients at once, through the official openai client (one
    AsyncOpenAI, its connection pool). httpx 0.28's AsyncClient was tried first: at 64 connections to uvicorn it
    stalled ~5% of requests for 5 s whichever server it faced, which measured the load generator, not the servers."""
    latencies: list[float] = []
    remaining = requests
    failures = 0
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=headers.get("Authorization", "Bearer x")[7:],
                                max_retries=0, timeout=60, default_headers=headers)

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                await client.chat.completions.create(**BODY)
            except openai.OpenAIError:
                failures += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    await client.close()
    quantiles = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "failures": failures, "rps": len(latencies) / wall,
            "p50_ms": quantiles[49] * 1000, "p99_ms": quantiles[98] * 1000}


def main() -> int:
    args = load_options(__doc__ or "", "service-overhead")
    recorder = Recorder(args.name, "benchmarks/service_overhead.py")
    folder = Path(tempfile.mkdtemp(prefix="hyperalign-overhead-"))
    store_url = f"sqlite:///{folder / 'service.sqlite3'}"
    with open_service_store(store_url) as store:
        key, _ = create_key(store, "bench")
        tenant = authenticate(store, key)[1]
        store.save(profile(end_user(tenant, "ann").key), expected_version=0, author="bench", action=Action.IMPORT)
    mock, upstream_port = start_mock(args.latency, ROOT)
    service_port = free_port()
    processes = [
        mock,
        subprocess.Popen([sys.executable, "-m", "hyperalign", "--backend", "fake", "serve", "--store", store_url,
                          "--port", str(service_port), "--upstream-base-url", f"http://127.0.0.1:{upstream_port}/v1",
                          "--rate-limit", "1000000/minute", "--no-jobs"], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        upstream, service = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{service_port}"
        wait_until_up(upstream)
        wait_until_up(f"{service}/healthz")
        auth = {"Authorization": f"Bearer {key}"}
        variants = {"direct to the upstream": (upstream, {}),
                    "through the service, no end user": (service, auth),
                    "through the service, profile applied": (service, auth | {"X-Hyperalign-User": "ann"})}
        for url, headers in variants.values():  # warm-up: connections, imports, the first queries
            asyncio.run(load(url, headers, 200, args.concurrency))
        rows: list[dict[str, Any]] = []
        service_process = psutil.Process(processes[1].pid)
        for round_number in range(1, args.rounds + 1):
            for label, (url, headers) in variants.items():
                before = service_process.cpu_times()
                measured = asyncio.run(load(url, headers, args.requests, args.concurrency))
                after = service_process.cpu_times()
                cpu = (after.user + after.system - before.user - before.system) * 1000 / args.requests
                row = {"round": round_number, "variant": label, **measured, "service_cpu_ms_per_request": cpu}
                print({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
                rows.append(row)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)

    def median(label: str, field: str) -> float:
        return statistics.median(r[field] for r in rows if r["variant"] == label)

    direct = "direct to the upstream"
    lines = [f"# Service overhead: {args.concurrency} concurrent clients, mock upstream with {args.latency * 1000:.0f} ms "
             f"latency, {args.requests} requests per measurement, {args.rounds} rounds (medians)", "",
             f"Command: `{recorder.command}`", "",
             "| variant | requests/s | vs direct | p50 ms | added p50 ms | p99 ms | service CPU ms per request | failures |", "|---|---|---|---|---|---|---|---|"]
    summary = {}
    for label in variants:
        rps, p50, p99 = median(label, "rps"), median(label, "p50_ms"), median(label, "p99_ms")
        cpu = median(label, "service_cpu_ms_per_request")
        ratio, added = rps / median(direct, "rps"), p50 - median(direct, "p50_ms")
        failures = sum(r["failures"] for r in rows if r["variant"] == label)
        summary[label] = {"rps": round(rps, 1), "throughput_ratio": round(ratio, 3), "p50_ms": round(p50, 1),
                          "added_p50_ms": round(added, 1), "p99_ms": round(p99, 1),
                          "service_cpu_ms_per_request": round(cpu, 2), "failures": failures}
        lines.append(f"| {label} | {rps:.0f} | {ratio:.1%} | {p50:.1f} | {added:+.1f} | {p99:.1f} | {cpu:.2f} | {failures} |")
    lines += ["", "Every round, one per line:", "", "| round | variant | requests/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    lines += [f"| {r['round']} | {r['variant']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |" for r in rows]
    recorder.write("\n".join(lines) + "\n", configuration=vars(args), summary=summary, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
