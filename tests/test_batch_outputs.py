"""Where a batch writes: the output checked before any LLM call (what it is, NAME_MAX of every name the batch
creates, a probe write, free space), kept when it fails mid-run (a rescue file, no further unit started), locked
against a second batch, and a Ray cluster that is not there said within a bounded time, in one line."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyperalign import HyperAlign
from hyperalign.batch.engines import LocalEngine
from hyperalign.batch.outputs import OutputLock, OutputSpot, Salvage
from hyperalign.batch.records import UserRecord, read_records
from hyperalign.batch.run import abatch_infer, plan_infer
from hyperalign.batch.targets import ProfileFolder, StoreProfiles, database_lock, output_spot
from hyperalign.batch.work import BatchOptions
from hyperalign.cli import app
from hyperalign.config import load_settings
from hyperalign.io import lock_path
from hyperalign.profiles.model import Profile
from openai_test_server import OpenAITestServer, completion, delayed, held

runner = CliRunner()
TEXT = "Fog again. The lamp turned 412 times last night. Gears first, opinions later."


def users_file(path: Path, count: int = 3) -> Path:
    path.write_text("".join(json.dumps({"id": f"user{n}", "examples": [{"text": f"{TEXT} Note {n}."}]}) + "\n"
                            for n in range(count)), encoding="utf-8")
    return path


def requests_file(path: Path, count: int = 6) -> Path:
    path.write_text("".join(json.dumps({"id": f"r{n}", "user_id": "u", "task": f"Task number {n}.",
                                        "strategy": "zero-shot"}) + "\n" for n in range(count)), encoding="utf-8")
    return path


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def refused_before_any_call(args: list[str], fragment: str) -> None:
    """The command exits 2 with one line containing `fragment`, and the endpoint never heard from it."""
    with OpenAITestServer() as server:
        result = runner.invoke(app, ["--backend", "openai", "--base-url", server.base_url, "--no-cache", "batch",
                                     *args])
        asked = len(server.requests)
    assert result.exit_code == 2, result.output
    errors = error_lines(result.output)
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output and asked == 0


# --- 1. the output, checked before any LLM call -------------------------------------------------------------------

def test_outputs_that_cannot_be_written_are_refused_before_any_llm_call(tmp_path):
    users, requests = users_file(tmp_path / "users.jsonl"), requests_file(tmp_path / "requests.jsonl")
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "pipe.sqlite3")
    long_folder = "p" * 256
    long_store = "s" * 246 + ".sqlite3"  # 254 characters: SQLite's "-journal" beside it would be 262
    for args, fragment in [
        (["infer", str(users), "--out", str(tmp_path / "file" / "profiles")], "is a file, not a folder"),
        (["infer", str(users), "--out", str(tmp_path / "file")], "not a folder"),
        (["infer", str(users), "--out", "/dev/null"], "not a folder"),
        (["infer", str(users), "--out", str(tmp_path / "pipe.sqlite3")], "not a regular file"),
        (["infer", str(users), "--out", str(tmp_path / long_folder)], "256 bytes"),
        (["infer", str(users), "--out", str(tmp_path / "deeper" / long_folder / "p")], "256 bytes"),
        (["infer", str(users), "--out", str(tmp_path / long_store)], "-journal"),
        (["generate", str(requests), "-o", str(tmp_path / ("o" * 256))], "256 bytes"),
        (["generate", str(requests), "-o", str(tmp_path / "file" / "out.jsonl")], "file"),
    ]:
        refused_before_any_call(args, fragment)
    assert not (tmp_path / "deeper").exists() and not (tmp_path / long_store).exists()


def test_names_that_fit_name_max_with_everything_beside_them_are_accepted(tmp_path):
    """The lock and temporary names are bounded, so an output name of 255 bytes still works."""
    requests = requests_file(tmp_path / "requests.jsonl", 2)
    out = tmp_path / ("o" * 249 + ".jsonl")
    result = runner.invoke(app, ["--backend", "fake", "--no-cache", "batch", "generate", str(requests), "-o",
                                 str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 2 and sorted(
        p.name for p in tmp_path.iterdir() if p.name != lock_path(out, "append").name) == sorted(
        ["requests.jsonl", out.name])  # no lock or temporary file left behind
    folder = tmp_path / ("f" * 255)
    users = users_file(tmp_path / "users.jsonl", 2)
    result = runner.invoke(app, ["--backend", "fake", "--no-cache", "batch", "infer", str(users), "--out",
                                 str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["user0.json", "user1.json"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB file system (tmpfs), for a full disk and a read-only one; root only."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({made.stderr.strip()[:100]}); the other cases of "
                    "this file cover the checks without one")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write until the file system is full."""
    ballast = folder / "ballast"
    with open(ballast, "wb") as sink:
        try:
            while True:
                sink.write(b"\0" * 65536)
                sink.flush()
        except OSError:
            pass
    return ballast


def test_a_full_or_read_only_file_system_is_refused_up_front(small_disk, tmp_path):
    users, requests = users_file(tmp_path / "users.jsonl"), requests_file(tmp_path / "requests.jsonl")
    ballast = fill(small_disk)
    refused_before_any_call(["infer", str(users), "--out", str(small_disk / "profiles")], "No space left")
    refused_before_any_call(["generate", str(requests), "-o", str(small_disk / "out.jsonl")], "No space left")
    os.truncate(ballast, ballast.stat().st_size - 300 * 1024)  # room for a file, not for a batch
    refused_before_any_call(["infer", str(users), "--out", str(small_disk / "profiles")], "MiB free")
    refused_before_any_call(["generate", str(requests), "-o", str(small_disk / "out.jsonl")], "MiB free")
    ballast.unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    for args in (["infer", str(users), "--out", str(small_disk / "profiles")],
                 ["infer", str(users), "--out", str(small_disk / "p.sqlite3")],
                 ["generate", str(requests), "-o", str(small_disk / "out.jsonl")]):
        refused_before_any_call(args, "Read-only file system")
    assert list(small_disk.iterdir()) == []


# --- 1. the output failing mid-run: finished work kept ------------------------------------------------------------

def test_a_folder_that_stops_taking_profiles_mid_run_keeps_them_in_a_rescue_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    users, _ = read_records(users_file(tmp_path / "users.jsonl", 5), UserRecord, "id", "fail")
    settings = load_settings(backend="fake", no_cache=True)
    engine = LocalEngine(HyperAlign.from_settings(settings), BatchOptions(), 1)
    folder = tmp_path / "profiles"
    target = ProfileFolder(folder)
    works, _ = plan_infer(users, target)
    salvage = Salvage(target.description)

    async def run() -> list:
        finished = []
        async for done in abatch_infer(engine, works, target, salvage):
            finished.append(done)
            if len(finished) == 1:  # the folder is swapped for a file: every later write fails
                folder.rename(tmp_path / "moved")
                folder.write_text("not a folder any more")
        return finished

    finished = asyncio.run(run())
    assert [d.ok for d in finished][:1] == [True] and (tmp_path / "moved" / "user0.json").exists()
    failed = [d for d in finished if not d.ok]
    assert failed and all(f"kept in {salvage.path}" in d.error for d in failed)
    assert salvage.kept == len(failed) and salvage.not_started == 5 - len(finished) > 0
    kept = [Profile.from_document(json.loads(line), "rescued") for line in salvage.path.read_text().splitlines()]
    assert sorted(p.user_id for p in kept) == sorted(d.user_id for d in failed)
    assert "kept in" in salvage.summary() and f"{salvage.not_started} not started" in salvage.summary()


def _batch(args: list[str], base_url: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hyperalign", "--backend", "openai", "--base-url", base_url,
                             "--no-cache", "--concurrency", "1", "batch", *args], text=True,
                            env=os.environ | {"HYPERALIGN_MAX_RETRIES": "0", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def test_a_disk_that_fills_mid_run_keeps_finished_outputs_in_a_rescue_file(small_disk, tmp_path):
    requests = requests_file(tmp_path / "requests.jsonl", 8)
    out, rescue_folder = small_disk / "out.jsonl", tmp_path / "tmp"
    rescue_folder.mkdir()
    # Each row longer than a page: a full file system refuses the next row (a page's slack would take a short one).
    with OpenAITestServer(default=delayed(0.4, completion("Gears first, opinions later. " * 200))) as server:
        process = _batch(["generate", str(requests), "-o", str(out)], server.base_url, {"TMPDIR": str(rescue_folder)})
        deadline = time.monotonic() + 60
        while not out.exists() or len(out.read_text().splitlines()) < 2:
            assert time.monotonic() < deadline and process.poll() is None, "no output before the disk filled"
            time.sleep(0.02)
        ballast = fill(small_disk)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 2, stderr
        errors = error_lines(stderr)
        assert len(errors) == 1 and "kept in" in errors[0] and "not started" in errors[0], stderr
        (rescued,) = rescue_folder.iterdir()
        written, kept = _rows(out), _rows(rescued)
        assert kept and {r["id"] for r in written}.isdisjoint(r["id"] for r in kept)
        # The person frees space and hands the rescued rows back: the rerun asks only for what was never done.
        ballast.unlink()
        with open(out, "a", encoding="utf-8") as sink:
            sink.write("".join(json.dumps(r) + "\n" for r in kept))
        asked_before = len(server.requests)
        rerun = _batch(["generate", str(requests), "-o", str(out)], server.base_url)
        assert rerun.wait(timeout=60) == 0, rerun.communicate()[1]
        asked_again = [r.body["messages"][-1]["content"] for r in server.requests[asked_before:]]
    done_before = {r["id"] for r in written} | {r["id"] for r in kept}
    assert sorted(r["id"] for r in _rows(out)) == sorted(f"r{n}" for n in range(8))
    assert len(asked_again) == 8 - len(done_before)
    assert not any(f"Task number {key[1:]}." in text for key in done_before for text in asked_again)


# --- 2. one batch per output --------------------------------------------------------------------------------------

def test_a_second_batch_on_the_same_output_fails_at_once_naming_the_first(tmp_path):
    requests = requests_file(tmp_path / "requests.jsonl", 6)
    out = tmp_path / "out.jsonl"
    release = threading.Event()  # the first batch's last answers wait until the second has been refused
    with OpenAITestServer() as first_server, OpenAITestServer() as second_server:
        first_server.script(completion(), *[held(release)] * 5)
        first = _batch(["generate", str(requests), "-o", str(out)], first_server.base_url)
        try:
            deadline = time.monotonic() + 60
            while not out.exists():
                assert time.monotonic() < deadline and first.poll() is None, "the first batch wrote nothing"
                time.sleep(0.02)
            second = _batch(["generate", str(requests), "-o", str(out)], second_server.base_url)
            _, stderr = second.communicate(timeout=60)
            asked_by_second = len(second_server.requests)
        finally:
            release.set()
            first_stderr = first.communicate(timeout=60)[1]
    assert second.returncode == 2 and asked_by_second == 0, stderr
    (line,) = error_lines(stderr)
    assert str(out) in line and f"pid {first.pid}" in line and "another batch" in line
    assert first.returncode == 0, first_stderr
    assert sorted(r["id"] for r in _rows(out)) == [f"r{n}" for n in range(6)]  # each done once
    # The batch's lock is gone; the log's own lock for appends (io.JsonlLog, held per row) stays, hidden, as locks do.
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != lock_path(out, "append").name)
    assert left == ["out.jsonl", "requests.jsonl"]


@pytest.mark.parametrize("where", ["profiles", "profiles.sqlite3"])
def test_batch_infer_refuses_an_output_another_batch_holds(tmp_path, where):
    users = users_file(tmp_path / "users.jsonl", 2)
    spot = output_spot(str(tmp_path / where))
    assert spot is not None
    if spot.kind == "folder":
        spot.path.mkdir()
    with OutputLock(spot):
        refused_before_any_call(["infer", str(users), "--out", str(spot.path)], "another batch is writing")
    result = runner.invoke(app, ["--backend", "fake", "--no-cache", "batch", "infer", str(users), "--out",
                                 str(spot.path)])
    assert result.exit_code == 0, result.output  # released: the next batch runs
    assert not spot.lock.exists()


def test_batch_infer_refuses_a_postgresql_store_another_batch_writes_to(tmp_path, postgres):
    url = postgres.create_database(f"batchlock{os.getpid()}")
    users = users_file(tmp_path / "users.jsonl", 2)
    holder = StoreProfiles(url)
    try:
        lock = database_lock(holder)
        assert lock is not None
        with lock:
            refused_before_any_call(["infer", str(users), "--out", url], f"pid {os.getpid()}")
    finally:
        holder.close()
    result = runner.invoke(app, ["--backend", "fake", "--no-cache", "batch", "infer", str(users), "--out", url])
    assert result.exit_code == 0, result.output  # the lock went with its connection
    assert database_lock(ProfileFolder(tmp_path / "p")) is None  # a folder has the file lock instead


def test_a_lock_left_by_a_killed_batch_does_not_block_the_next(tmp_path):
    spot = OutputSpot(tmp_path / "out.jsonl", "file")
    spot.lock.write_text("pid 999999 on elsewhere, started long ago\n")  # no process holds it
    result = runner.invoke(app, ["--backend", "fake", "--no-cache", "batch", "generate",
                                 str(requests_file(tmp_path / "r.jsonl", 1)), "-o", str(spot.path)])
    assert result.exit_code == 0, result.output


# --- 3. a Ray cluster that is not there ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray_batch(tmp_path: Path, address_args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    users = users_file(tmp_path / "users.jsonl", 2)
    return subprocess.run([sys.executable, "-m", "hyperalign", "--backend", "fake", "batch", "infer", str(users),
                           "--out", str(tmp_path / "p"), "--engine", "ray", *address_args], capture_output=True,
                          text=True, timeout=120, env=os.environ | {"TMPDIR": str(tmp_path), **env})


@pytest.mark.parametrize("how", ["--ray-address", "RAY_ADDRESS"])
def test_an_unreachable_ray_cluster_is_one_line_and_exit_2(tmp_path, how):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    args, env = ([how, address], {}) if how == "--ray-address" else ([], {"RAY_ADDRESS": address})
    result = _ray_batch(tmp_path, args, {"HYPERALIGN_RAY_CONNECT_TIMEOUT": "3", **env})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == error_lines(result.stderr), result.stderr  # nothing of Ray's
    assert address in result.stderr and "cannot be reached" in result.stderr
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


def test_a_ray_address_that_never_answers_gives_up_after_the_connect_timeout(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        result = _ray_batch(tmp_path, ["--ray-address", address, "--ray-connect-timeout", "3"], {})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error:") and address in line and "no answer within 3 s" in line
    log = Path(line.rsplit("Ray's messages are in ", 1)[1].strip())
    assert log.parent == tmp_path and log.exists()  # Ray's own warnings went there, not to the terminal


def test_a_ray_address_that_is_not_host_and_port_is_named(tmp_path):
    pytest.importorskip("ray")
    result = _ray_batch(tmp_path, ["--ray-address", "head-node:port"], {})
    assert result.returncode == 2 and error_lines(result.stderr) == result.stderr.strip().splitlines()
    assert "head-node:port" in result.stderr and "host:port" in result.stderr
