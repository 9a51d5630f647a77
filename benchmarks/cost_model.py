"""The cost of personalizing for N users (1M by default), computed from what was measured and from one cited
throughput figure; every number in the report comes from here:

- calls and tokens per user of the contrastive inference (default voice, proposal, verification): the profiles
  of the committed AAAC run (benchmarks/runs/aaac-contrast-qwen1.5b-10x3.tar.gz, 10 authors, 7 texts each,
  Qwen2.5-Coder-1.5B), and the single-call proposal's cost (inference-cost-*.json);
- calls and tokens per chat request: the same run's generations with the hyperalign strategy;
- GPU-hours on a vLLM server: those tokens over the cited output throughput (configs/cost-model.json), with the
  prompt tokens weighed low / assumed / high (a stated assumption, not a measurement);
- database size per user: the run's real texts and profiles written to a fresh store (SQLite) the way the service
  writes them (examples table, one profile version), N users, file size / N;
- read load: one profile read per personalized chat request at the configured rate and peak, against the
  measured read latency (profile-reads.json); the batch machinery's own capacity (batch-scale.json).

    python benchmarks/cost_model.py [--inputs benchmarks/configs/cost-model.json]

Writes benchmarks/results/cost-model.md and .json."""

from __future__ import annotations

import argparse
import json
import statistics
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hyperalign.profiles.model import Profile, UserExample
from hyperalign.profiles.store import Action
from hyperalign.service.tables import open_service_store
from provenance import ROOT, Recorder


def run_members(archive: Path) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """(profiles of the hyperalign method, results.json, split.json) of a committed run folder archive."""
    with tarfile.open(archive) as run:
        names = run.getnames()
        root = names[0].split("/")[0]

        def load(name: str) -> Any:
            member = run.extractfile(f"{root}/{name}")
            assert member is not None, name
            return json.load(member)

        profiles = [load(n.split("/", 1)[1]) for n in names
                    if n.count("/") == 2 and n.startswith(f"{root}/profiles/") and n.endswith(".json")]
        return profiles, load("results.json"), load("split.json")


def per_user(profiles: list[dict[str, Any]]) -> dict[str, float]:
    """Mean calls and tokens per user, by stage. Calls answered from the cache in that run are counted: a new
    user's are not cached. The default voice writes one text per example."""
    rows = []
    for profile in profiles:
        report, contrast = profile["report"], profile["contrast"]
        verification = float((report.get("verification") or {}).get("calls", 0.0))
        others = report["llm_calls"] - contrast["llm_calls"] + report["cache_hits"] - verification
        rows.append({"contrast_calls": float(profile["n_examples"]), "verification_calls": verification,
                     "proposal_calls": float(others),
                     "contrast_prompt_tokens": contrast["prompt_tokens"],
                     "contrast_completion_tokens": contrast["completion_tokens"],
                     "prompt_tokens": report["prompt_tokens"], "completion_tokens": report["completion_tokens"],
                     "texts": float(profile["n_examples"]), "profile_bytes": float(len(json.dumps(profile)))})
    mean = {key: statistics.fmean(r[key] for r in rows) for key in rows[0]}
    mean["calls"] = mean["contrast_calls"] + mean["verification_calls"] + mean["proposal_calls"]
    mean["profiles"] = float(len(rows))
    return mean


def database_bytes(profiles: list[dict[str, Any]], split: dict[str, Any], users: int, folder: Path) -> dict[str, float]:
    """Bytes per user of a SQLite store holding each user's texts and one profile version, written as the service
    writes them (service.users.add_examples, ProfileStore.save)."""
    from hyperalign.service.tenants import authenticate, create_key
    from hyperalign.service.users import add_examples, end_user

    texts = {a["author"]: [UserExample(prompt=d["prompt"], text=d["text"]) for d in a["demonstrations"]]
             for a in split["authors"]}
    by_author = [(Profile.from_document(p, p["user_id"]), texts[p["user_id"]]) for p in profiles
                 if p["user_id"] in texts]
    path = folder / "size.sqlite3"
    with open_service_store(path) as store:
        key, _ = create_key(store, "bench")
        found = authenticate(store, key)
        assert found is not None
        tenant = found[1]
        empty = path.stat().st_size
        for n in range(users):
            profile, examples = by_author[n % len(by_author)]
            user = end_user(tenant, f"user-{n}")
            add_examples(store, user, examples)
            store.save(profile.model_copy(update={"user_id": user.key}), expected_version=None, author="bench",
                       action=Action.INFER, message="cost model")
    # Closed: SQLite has moved its write-ahead log into the file.
    text_bytes = statistics.fmean(sum(len(e.text.encode()) + len((e.prompt or "").encode()) for e in ex)
                                  for _, ex in by_author)
    return {"bytes_per_user": (path.stat().st_size - empty) / users, "text_bytes_per_user": text_bytes,
            "users_written": float(users)}


def gpu_hours(tokens: tuple[float, float], count: float, throughput: float, weight: float) -> float:
    prompt, completion = tokens
    return count * (completion + weight * prompt) / throughput / 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", default="benchmarks/configs/cost-model.json")
    parser.add_argument("--name", default="cost-model")
    args = parser.parse_args()
    recorder = Recorder(args.name, "benchmarks/cost_model.py")
    inputs = json.loads((ROOT / args.inputs).read_text(encoding="utf-8"))
    measured = inputs["measured"]
    profiles, results, split = run_members(ROOT / measured["run"])
    user = per_user(profiles)
    hyperalign = results["cost"]["methods"]["hyperalign"]
    request = {"calls": hyperalign["llm_calls_per_generation"], "prompt_tokens": hyperalign["prompt_tokens_per_generation"],
               "completion_tokens": hyperalign["completion_tokens_per_generation"]}
    proposal = json.loads((ROOT / measured["inference_cost"]).read_text(encoding="utf-8"))["rows"]
    single = [r for r in proposal if r["proposal"] == "single"]
    with tempfile.TemporaryDirectory() as folder:
        database = database_bytes(profiles, split, measured["database_users"], Path(folder))
    reads = json.loads((ROOT / measured["profile_reads"]).read_text(encoding="utf-8"))["rows"]
    scale_path = ROOT / measured["batch_scale"]
    scale = json.loads(scale_path.read_text(encoding="utf-8"))["summary"] if scale_path.exists() else None

    users, per_day = inputs["users"], inputs["chat_requests_per_user_per_day"]
    weights = inputs["prompt_token_cost"]
    inference_tokens = (user["prompt_tokens"], user["completion_tokens"])
    request_tokens = (request["prompt_tokens"], request["completion_tokens"])
    requests_per_s = users * per_day / 86400
    peak = requests_per_s * inputs["peak_over_mean"]

    n = f"{users:,}"
    lines = [f"# Cost model: {n} users", "", f"Command: `{recorder.command}` (inputs: `{args.inputs}`). Every "
             "number below is computed by the script from the measured runs it names and the inputs file.", "",
             "## Per user: one contrastive inference", "",
             f"Measured: the {user['profiles']:.0f} profiles of `{measured['run']}` (Qwen2.5-Coder-1.5B, "
             f"{user['texts']:.0f} texts per user; calls answered from that run's cache counted, as a new user's "
             "are not cached).", "",
             "| stage | calls / user | prompt tokens / user | completion tokens / user |", "|---|---|---|---|",
             f"| default voice (one answer per text) | {user['contrast_calls']:.1f} | "
             f"{user['contrast_prompt_tokens']:,.0f} | {user['contrast_completion_tokens']:,.0f} |",
             f"| proposal (and its repairs, evidence fixes) | {user['proposal_calls']:.1f} | "
             f"{user['prompt_tokens'] - user['contrast_prompt_tokens']:,.0f} (with verification) | "
             f"{user['completion_tokens'] - user['contrast_completion_tokens']:,.0f} (with verification) |",
             f"| verification (pairs × position swap) | {user['verification_calls']:.1f} | (above) | (above) |",
             f"| **all** | **{user['calls']:.1f}** | **{user['prompt_tokens']:,.0f}** | "
             f"**{user['completion_tokens']:,.0f}** |", "",
             f"The proposal alone, as one call (`{measured['inference_cost']}`, {len(single)} authors): "
             f"{statistics.fmean(r['prompt_tokens'] for r in single):,.0f} prompt + "
             f"{statistics.fmean(r['completion_tokens'] for r in single):,.0f} completion tokens.", "",
             "## Per chat request", "",
             f"One upstream call: {request['prompt_tokens']:,.0f} prompt tokens (the task and the profile as a "
             f"system message) + {request['completion_tokens']:,.0f} completion tokens (the same run's "
             "generations, `--max-tokens 400`). The profile is read once from the database; nothing else is "
             "called.", "",
             f"## GPU-hours on a vLLM server, {n} users", "",
             f"Inference once per user ({inputs['inferences_per_user']}×), then {per_day} chat requests per user "
             "per day. Tokens per user are the measured ones above (a larger model writes about as many: the "
             "texts, prompts and `max_tokens` caps set them). Prompt tokens weighed "
             f"{weights['low']} / {weights['assumed']} / {weights['high']} of an output token: {weights['why']}",
             "", "| throughput (cited) | inference, all users: GPU-hours (low / assumed / high) | "
             "chat, per day: GPU-hours (low / assumed / high) | GPUs for the chat load (assumed) |",
             "|---|---|---|---|"]
    gpu_rows = []
    for figure in inputs["throughput"]:
        rate = figure["output_tokens_per_s"]
        once = [gpu_hours(inference_tokens, users * inputs["inferences_per_user"], rate, weights[k])
                for k in ("low", "assumed", "high")]
        daily = [gpu_hours(request_tokens, users * per_day, rate, weights[k]) for k in ("low", "assumed", "high")]
        gpu_rows.append({"throughput": figure, "inference_gpu_hours": once, "chat_gpu_hours_per_day": daily})
        lines.append(f"| {rate:,.0f} output tok/s: {figure['model']}, {figure['gpu']}, {figure['engine']} | "
                     f"{once[0]:,.0f} / **{once[1]:,.0f}** / {once[2]:,.0f} | {daily[0]:,.0f} / **{daily[1]:,.0f}** "
                     f"/ {daily[2]:,.0f} | {daily[1] / 24 * inputs['peak_over_mean']:,.1f} at the peak |")
    lines += ["", "Sources: " + "; ".join(f"{f['output_tokens_per_s']:,.0f} tok/s — {f['source']}"
                                          for f in inputs["throughput"]) + ".", ""]
    lines += ["## Database", "",
              f"Measured: {database['users_written']:.0f} users written to a fresh SQLite store as the service "
              f"writes them (their texts and one profile version, the run's real ones): "
              f"**{database['bytes_per_user'] / 1024:,.1f} KiB per user** (of which the texts themselves are "
              f"{database['text_bytes_per_user'] / 1024:,.1f} KiB; a profile is {user['profile_bytes'] / 1024:,.1f}"
              f" KiB of JSON). {n} users: **{database['bytes_per_user'] * users / 2**30:,.1f} GiB**, plus "
              "one profile version per edit or update (each a full copy of the profile).", ""]
    read_rows = {(r["database"], r["users"]): r for r in reads}
    lines += [f"Read load: one profile read per personalized request: {requests_per_s:,.0f} reads/s on average, "
              f"{peak:,.0f} at the peak ({inputs['peak_over_mean']}× the mean).", "",
              "| database | measured at users | p50 read | reads/s per process | processes for the peak |",
              "|---|---|---|---|---|"]
    for (name, count), row in sorted(read_rows.items()):
        lines.append(f"| {name} | {count:,} | {row['p50_ms']} ms | {row['reads_per_s']:,.0f} | "
                     f"{peak / row['reads_per_s']:,.1f} |")
    lines.append("")
    if scale:
        ray2 = scale["ray-2"]["users_per_hour"]
        lines += ["## hyperalign's own capacity", "",
                  f"`batch-scale.md`: on this 2-core machine against a mock upstream, `batch infer` handles "
                  f"{scale['local']['users_per_hour']:,.0f} users/hour on the local engine and {ray2:,.0f} on Ray "
                  f"with 2 workers ({scale['ray-2']['calls_per_s']:,.0f} LLM calls/s). At that rate, {n} users "
                  f"take {users / ray2:,.0f} hours of such a machine: the GPUs above, not hyperalign, set the "
                  "pace.", ""]
    lines += ["## What is per process and what is shared", "",
              "| | per process (service worker, batch process or Ray actor) | shared |", "|---|---|---|",
              "| LLM access | an LLM client: its connection pool, `--concurrency` semaphore, tokens-per-minute "
              "bucket, in-flight de-duplication | the vLLM server(s) |",
              "| state | rate-limit counters (`limits` in memory), templates, memoized token lookups | the database: "
              "keys, tenants, users, texts, profile versions, jobs, the service's secrets |",
              "| jobs | the job a worker claimed (a lease it renews) | the jobs table: any replica claims, a dead "
              "one's jobs are re-queued |",
              "| batch | the batch's lock and its output writer (one batch per output) | the profile store it "
              "writes to |", ""]
    record = {"inputs": inputs, "per_user": user, "per_request": request, "gpu": gpu_rows, "database": database,
              "reads": {"mean_per_s": requests_per_s, "peak_per_s": peak}, "batch_scale": scale}
    recorder.write("\n".join(lines), **record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
