"""Batch personalization: `hyperalign batch infer|generate` end to end on the fake backend, bad lines by number,
resuming (also after SIGKILL) without redoing finished work, Retry-After honoured against a local OpenAI-compatible
server, and the Ray engine giving the local engine's results."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyperalign.batch.engines import LocalEngine, RayEngine
from hyperalign.batch.records import RequestRecord, UserRecord, read_records
from hyperalign.batch.run import abatch_generate, abatch_infer, plan_generate, plan_infer
from hyperalign.batch.targets import ProfileFolder
from hyperalign.batch.work import BatchOptions
from hyperalign.cli import app
from hyperalign.config import load_settings
from hyperalign.errors import InputError
from hyperalign.io import JsonlLog
from hyperalign.pipeline.generate import Strategy
from hyperalign.profiles.store import ProfileStore
from openai_test_server import OpenAITestServer, completion, delayed, error

runner = CliRunner()
TEXT = "Fog again. The lamp turned 412 times last night. Gears first, opinions later."


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def users_file(path: Path, count: int = 3) -> Path:
    return write_jsonl(path, [{"id": f"user{n}", "examples": [{"text": f"{TEXT} Note {n}."}],
                               "attributes": {"role": "keeper"}} for n in range(count)])


def batch(*args: str):
    return runner.invoke(app, ["--backend", "fake", "--no-cache", "batch", *args])


def test_batch_infer_writes_every_profile_and_a_rerun_skips_them(tmp_path):
    users = users_file(tmp_path / "users.jsonl")
    first = batch("infer", str(users), "--out", str(tmp_path / "profiles"))
    assert first.exit_code == 0, first.output
    assert "3 done, 0 failed, 0 already done" in first.output
    assert sorted(p.name for p in (tmp_path / "profiles").iterdir()) == ["user0.json", "user1.json", "user2.json"]
    again = batch("infer", str(users), "--out", str(tmp_path / "profiles"))
    assert again.exit_code == 0 and "0 done, 0 failed, 3 already done" in again.output
    store = tmp_path / "profiles.sqlite3"
    assert batch("infer", str(users), "--out", str(store)).exit_code == 0
    with ProfileStore(store) as opened:
        assert [s.user_id for s in opened.list_profiles()] == ["user0", "user1", "user2"]


def test_bad_lines_are_reported_by_number_and_fail_or_are_skipped(tmp_path):
    users = write_jsonl(tmp_path / "users.jsonl", [
        {"id": "ann", "examples": [{"text": TEXT}]}, "{not json", {"id": "bob", "examples": []},
        {"id": "ann", "examples": [{"text": TEXT}]}, {"id": "cy", "examples": [{"text": TEXT}]}])
    failed = batch("infer", str(users), "--out", str(tmp_path / "p"))
    assert failed.exit_code == 2 and "line 2" in failed.output and "Traceback" not in failed.output
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())
    skipped = batch("infer", str(users), "--out", str(tmp_path / "p"), "--on-bad-line", "skip")
    assert skipped.exit_code == 0, skipped.output
    for number in (2, 3, 4):
        assert f"skipped line {number}:" in skipped.output
    assert "duplicate id 'ann'" in skipped.output and "2 done" in skipped.output and "3 bad lines" in skipped.output


def test_batch_generate_writes_outputs_and_reports_a_user_without_a_profile(tmp_path):
    users = users_file(tmp_path / "users.jsonl", 2)
    assert batch("infer", str(users), "--out", str(tmp_path / "profiles")).exit_code == 0
    requests = write_jsonl(tmp_path / "requests.jsonl", [
        {"id": "r1", "user_id": "user0", "task": "Write a note."}, {"id": "r2", "user_id": "user1", "task": "Hi."},
        {"id": "r3", "user_id": "ghost", "task": "Hi."},
        {"id": "r4", "user_id": "ghost", "task": "Hi.", "strategy": "zero-shot"}])
    out = tmp_path / "out.jsonl"
    result = batch("generate", str(requests), "-o", str(out), "--profiles", str(tmp_path / "profiles"))
    assert result.exit_code == 2 and "r3: no profile for user 'ghost'" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["r1", "r2", "r4"] and all(r["output"] for r in rows)
    again = batch("generate", str(requests), "-o", str(out), "--profiles", str(tmp_path / "profiles"))
    assert "3 already done" in again.output and len(out.read_text().splitlines()) == 3


def _batch_process(args: list[str], base_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hyperalign", "--backend", "openai", "--base-url", base_url,
                             "--no-cache", "--concurrency", "1", "batch", *args], env=os.environ | {
                                 "HYPERALIGN_MAX_RETRIES": "0"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_killed_batch_resumes_without_redoing_finished_work(tmp_path):
    requests = write_jsonl(tmp_path / "requests.jsonl", [
        {"id": f"r{n}", "user_id": "u", "task": f"Task number {n}.", "strategy": "zero-shot"} for n in range(6)])
    out = tmp_path / "out.jsonl"
    with OpenAITestServer(default=delayed(0.3, completion("Gears first."))) as server:
        process = _batch_process(["generate", str(requests), "-o", str(out)], server.base_url)
        deadline = time.monotonic() + 60
        while not out.exists() or len(out.read_text().splitlines()) < 2:
            assert time.monotonic() < deadline and process.poll() is None, "no output before the kill"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        finished = {json.loads(line)["id"] for line in out.read_text().splitlines() if line.strip()}
        assert 2 <= len(finished) < 6
        asked_before = len(server.requests)
        resumed = _batch_process(["generate", str(requests), "-o", str(out)], server.base_url)
        assert resumed.wait(timeout=60) == 0
        tasks_after = [r.body["messages"][-1]["content"] for r in server.requests[asked_before:]]
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == [f"r{n}" for n in range(6)]
    assert not any(f"Task number {n[1:]}." in t for n in finished for t in tasks_after)  # nothing finished redone


def test_a_429_is_retried_after_the_time_its_retry_after_header_asks(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERALIGN_MAX_RETRIES", "2")
    requests = write_jsonl(tmp_path / "requests.jsonl", [{"id": "r1", "user_id": "u", "task": "Hi.",
                                                          "strategy": "zero-shot"}])
    with OpenAITestServer() as server:
        server.script(error(429, "slow down", headers={"Retry-After": "1"}), completion("Gears first."))
        result = runner.invoke(app, ["--backend", "openai", "--base-url", server.base_url, "--no-cache",
                                     "batch", "generate", str(requests),
                                     "-o", str(tmp_path / "out.jsonl")])
        assert result.exit_code == 0, result.output
        first, retry = server.requests
    assert retry.at - first.at >= 1.0  # waited as told, not the SDK's own shorter backoff


@pytest.mark.ray
def test_the_ray_engine_gives_the_local_engines_results(tmp_path):
    pytest.importorskip("ray")
    import ray

    users, _ = read_records(users_file(tmp_path / "users.jsonl", 4), UserRecord, "id", "fail")
    settings = load_settings(backend="fake", no_cache=True, concurrency=4)
    from hyperalign import HyperAlign

    options = BatchOptions()
    local = LocalEngine(HyperAlign.from_settings(settings), options, 4)
    try:
        remote = RayEngine(settings, options, 4, num_cpus=2)
        results = {}
        for name, engine in (("local", local), ("ray", remote)):
            target = ProfileFolder(tmp_path / name)
            works, _ = plan_infer(users, target)

            async def collect(engine=engine, works=works, target=target):
                return [d async for d in abatch_infer(engine, works, target)]

            done = asyncio.run(collect())
            # Times differ between engines (the wall time, the backend's time in `usage`); the contrast's texts and
            # counts must not.
            results[name] = {d.key: {**{k: v for k, v in d.result.items() if k not in ("created_at", "report")},
                                     "contrast": {**d.result["contrast"], "seconds": None,
                                                  "usage": {**d.result["contrast"]["usage"], "seconds": None}}}
                             for d in done}
            requests = [(f"r{n}", RequestRecord(user_id=f"user{n}", task="Write a note.")) for n in range(4)]
            generate_works, impossible, _ = plan_generate(requests, target, set(), Strategy.HYPERALIGN)
            assert impossible == []
            log = JsonlLog(tmp_path / f"{name}.jsonl")

            async def generate(engine=engine, works=generate_works, log=log):
                return [d async for d in abatch_generate(engine, works, log, "run")]

            results[name + "-texts"] = {d.key: d.result["text"] for d in asyncio.run(generate())}
        assert results["ray"] == results["local"] and len(results["local"]) == 4
        assert results["ray-texts"] == results["local-texts"] and len(results["local-texts"]) == 4
    finally:
        ray.shutdown()


def test_records_refuse_what_they_cannot_use(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [{"user_id": "u", "task": "Hi.", "extra": 1}])
    with pytest.raises(InputError, match="line 1"):
        read_records(path, RequestRecord, "id", "fail")
    with pytest.raises(InputError, match="all 1 lines are invalid"):  # skipping everything leaves nothing to do
        read_records(path, RequestRecord, "id", "skip")
    path = write_jsonl(tmp_path / "r2.jsonl", [{"user_id": "u", "task": "Hi."}, {"user_id": "u", "task": "Hi.",
                                                                                  "extra": 1}])
    records, bad = read_records(path, RequestRecord, "id", "skip")
    assert len(records) == 1 and bad[0].number == 2


def test_batch_infer_writes_to_the_services_database_on_sqlite_and_postgresql(tmp_path, database_url):
    users = users_file(tmp_path / "users.jsonl", 2)
    result = batch("infer", str(users), "--out", database_url)
    assert result.exit_code == 0, result.output
    with ProfileStore(database_url) as store:
        assert [(s.user_id, s.action) for s in store.list_profiles()] == [("user0", "infer"), ("user1", "infer")]
    assert "2 already done" in batch("infer", str(users), "--out", database_url).output


@pytest.mark.ray
def test_the_cli_runs_a_batch_on_ray_as_on_the_local_engine(tmp_path):
    pytest.importorskip("ray")
    import ray

    users = users_file(tmp_path / "users.jsonl", 3)
    try:
        result = batch("infer", str(users), "--out", str(tmp_path / "ray"), "--engine", "ray")
        assert result.exit_code == 0, result.output
    finally:
        ray.shutdown()
    assert batch("infer", str(users), "--out", str(tmp_path / "local")).exit_code == 0
    for name in ("user0", "user1", "user2"):
        ray_profile, local_profile = (json.loads((tmp_path / where / f"{name}.json").read_text())
                                      for where in ("ray", "local"))
        assert ray_profile["hypotheses"] == local_profile["hypotheses"]
    assert batch("infer", str(users), "--out", str(tmp_path / "p"), "--engine", "spark").exit_code == 2


def test_generate_refuses_profiles_that_are_not_there(tmp_path):
    requests = write_jsonl(tmp_path / "r.jsonl", [{"user_id": "u", "task": "Hi."}])
    for missing in (tmp_path / "no-such-folder", tmp_path / "no-such.sqlite3"):
        result = batch("generate", str(requests), "-o", str(tmp_path / "o.jsonl"), "--profiles", str(missing))
        assert result.exit_code == 2 and "no such" in result.output and not missing.exists()

