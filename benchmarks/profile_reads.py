"""How fast the service reads a user's current profile (what every personalized chat request does) as the number of
users grows: 10k and 1M users, on SQLite (WAL) and on PostgreSQL, each user with one stored profile of 8 hypotheses,
2,000 reads of random users per measurement, after a warm-up.

    python benchmarks/profile_reads.py [--users 10000,1000000] [--reads 2000] [--postgres URL]

Without --postgres a throw-away PostgreSQL cluster is started (tests/postgres_cluster.py; needs Debian's postgresql).
Writes benchmarks/results/profile-reads.md and .json. Run it alone."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from hyperalign.profiles.store import ProfileStore, profiles_table, versions_table
from provenance import ROOT, Recorder
from service_overhead import profile

sys.path.insert(0, str(ROOT / "tests"))
from postgres_cluster import PostgresCluster

BATCH = 5_000


def populate(store: ProfileStore, users: int) -> float:
    document = profile("USER").model_dump_json()
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, users, BATCH):
        ids = [f"tbench:user{n}" for n in range(start, min(users, start + BATCH))]
        with store.transaction(write=True) as connection:
            connection.execute(insert(profiles_table), [
                {"user_id": i, "current_version": 1, "created_at": now, "updated_at": now} for i in ids])
            connection.execute(insert(versions_table), [
                {"user_id": i, "version": 1, "created_at": now, "author": "bench", "action": "import",
                 "profile": document.replace('"USER"', json.dumps(i))} for i in ids])
    return time.perf_counter() - started


def reads(store: ProfileStore, users: int, count: int, seed: int = 0) -> dict[str, float]:
    chooser = random.Random(seed)
    for _ in range(200):  # warm-up: connections, statement caches
        store.get(f"tbench:user{chooser.randrange(users)}")
    latencies = []
    for _ in range(count):
        key = f"tbench:user{chooser.randrange(users)}"
        started = time.perf_counter()
        stored = store.get(key)
        latencies.append(time.perf_counter() - started)
        assert stored.profile.user_id == key
    quantiles = statistics.quantiles(latencies, n=100)
    return {"p50_ms": quantiles[49] * 1000, "p99_ms": quantiles[98] * 1000, "reads_per_s": count / sum(latencies)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="10000,1000000")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--postgres", help="an empty PostgreSQL database's URL (default: a throw-away cluster)")
    parser.add_argument("--name", default="profile-reads")
    args = parser.parse_args()
    recorder = Recorder(args.name, "benchmarks/profile_reads.py")
    sizes = [int(n) for n in args.users.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="hyperalign-reads-"))
    folder.chmod(0o711)  # the PostgreSQL server runs as another account (as root: postgres) and must reach its folder
    cluster = None if args.postgres else PostgresCluster(folder / "postgres").start()
    rows: list[dict[str, Any]] = []
    try:
        for users in sizes:
            databases = {"SQLite (WAL)": f"sqlite:///{folder / f'reads-{users}.sqlite3'}",
                         "PostgreSQL": args.postgres or cluster.create_database(f"reads{users}")}  # type: ignore[union-attr]
            for label, url in databases.items():
                with ProfileStore(url) as store:
                    seconds = populate(store, users)
                    row = {"database": label, "users": users, "populate_s": round(seconds, 1),
                           **{k: round(v, 3) for k, v in reads(store, users, args.reads).items()}}
                print(row, flush=True)
                rows.append(row)
    finally:
        if cluster is not None:
            cluster.stop()
    lines = [f"# Profile read latency: one random user's current profile, {args.reads} reads per measurement", "",
             f"Command: `{recorder.command}`", "",
             "| database | users | p50 ms | p99 ms | reads/s (one client) | time to load the users |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['database']} | {r['users']:,} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['reads_per_s']:.0f} | "
              f"{r['populate_s']:.0f} s |" for r in rows]
    recorder.write("\n".join(lines) + "\n", configuration=vars(args), rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
