"""More cases of the CLI's adversarial pass (tests/adversarial_cases.py runs them with its own): secrets in
arguments, URLs and settings; batch outputs that cannot be written or fail mid-run; names at NAME_MAX; two
writers on one output; a Ray cluster that is not there."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from adversarial_cases import TASKS, Case, Outcome, base_files, both, fifo, jsonl, out_rows, run_argv, write

SECRET = "s3cr3tvalue7781"
USERS = [{"id": f"u{n}", "examples": [{"text": f"Right then. Note {n}. Lock the gate. No excuses."}]}
         for n in range(3)]
# Processes holding a batch lock during a case (by the case's folder), ended by the case's check.
_HOLDERS: dict[Path, subprocess.Popen[bytes]] = {}
_SILENT: list[socket.socket] = []  # listening sockets that never answer, open while the pass runs
HOLD = """
import filelock, os, sys, time
lock = filelock.FileLock(sys.argv[1], timeout=0)
lock.acquire()
with open(sys.argv[1], "w") as note:
    note.write(f"pid {os.getpid()} on the-other-host, started earlier\\n")
time.sleep(float(sys.argv[2]))
"""


def batch_files(d: Path) -> None:
    base_files(d)
    write(d / "users.jsonl", jsonl(USERS))
    write(d / "requests.jsonl", jsonl([{"id": t["id"], "user_id": "u", "task": t["task"], "strategy": "zero-shot"}
                                       for t in TASKS]))


def holding(output: str, kind: str) -> Callable[[Path], None]:
    """Another batch holds `output`'s lock while the case runs."""
    def setup(d: Path) -> None:
        from hyperalign.batch.outputs import OutputSpot

        lock = OutputSpot(d / output, "folder" if kind == "folder" else "file").lock
        _HOLDERS[d] = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), "120"])
        deadline = time.monotonic() + 30
        while not (lock.exists() and lock.read_text().strip()):
            if time.monotonic() > deadline:
                raise RuntimeError("the holder did not take the lock")
            time.sleep(0.05)
    return setup


def released(d: Path, _: Outcome) -> str | None:
    holder = _HOLDERS.pop(d, None)
    if holder is not None:
        holder.kill()
        holder.wait()
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _silent_address() -> str:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    _SILENT.append(listener)
    return f"127.0.0.1:{listener.getsockname()[1]}"


def _rescued_after_full_disk(d: Path, outcome: Outcome) -> str | None:
    """The disk filled mid-batch: every finished row is in the output or the rescue file (named in the error), the
    output ends with a whole row, and a rerun with room finishes the rest."""
    named = re.search(r"kept in (\S+?\.txt)", outcome.stderr)
    rescue = Path(named.group(1)) if named else None
    kept = [json.loads(line) for line in rescue.read_text().splitlines()] if rescue and rescue.exists() else []
    written = (d / "out.jsonl").read_bytes() if (d / "out.jsonl").exists() else b""
    if written and not written.endswith(b"\n"):
        return "the output ends with a torn row"
    if not kept:
        return "no rescue file named, or it is empty"
    done = run_argv(d, ["batch", "generate", "requests.jsonl", "-o", "out.jsonl"], {})
    if done.code != 0:
        return f"the rerun failed: {done.stderr.strip()[-200:]}"
    return out_rows("out.jsonl", len(TASKS))(d, done)


def ops_cases() -> list[Case]:
    c: list[Case] = []
    add = c.append

    # Secrets in arguments, URLs and settings: shown nowhere.
    for name, args, env, expect, fragment in [
        ("a key in the base URL's query, shown by settings", ["settings"],
         {"HYPERALIGN_BASE_URL": f"http://example.org/v1?api-key={SECRET}"}, "accept", None),
        ("a key= query on an unreachable endpoint", ["--backend", "openai", "--base-url",
                                                     f"http://127.0.0.1:9/v1?key={SECRET}", "generate", "--strategy",
                                                     "zero-shot", "Hi."], {"HYPERALIGN_MAX_RETRIES": "0"}, "reject",
         "cannot reach"),
        ("--api-key on an unreachable endpoint", ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                                                  "--api-key", f"sk-{SECRET}", "generate", "--strategy", "zero-shot",
                                                  "Hi."], {"HYPERALIGN_MAX_RETRIES": "0"}, "reject", "cannot reach"),
        ("libpq's ?password= in a store URL", ["profile", "list", "--store",
                                               f"postgresql+psycopg://u@127.0.0.1:1/x?password={SECRET}"], {},
         "reject", "store"),
        ("a URL password in a store URL", ["profile", "list", "--store",
                                           f"postgresql+psycopg://u:{SECRET}@127.0.0.1:1/x"], {}, "reject", "store"),
        ("a key in the settings file, shown by settings", ["settings"], {"HYPERALIGN_CONFIG": ""}, "accept", None),
    ]:
        setup = (lambda d: write(d / "hyperalign.toml", f"api_key = 'sk-{SECRET}'\n")) if "file" in name else None
        add(Case(f"secrets: {name}", "secrets", args, expect=expect, fragment=fragment, env=env, setup=setup,
                 forbidden=[SECRET], fake="backend" not in args))

    # Batch outputs that cannot be written: refused before any LLM call, one line.
    infer, generate = ["batch", "infer", "users.jsonl", "--out"], ["batch", "generate", "requests.jsonl", "-o"]
    for name, args, setup, fragment in [
        ("infer --out under a file", [*infer, "ex.jsonl/profiles"], None, "is a file, not a folder"),
        ("infer --out an existing file", [*infer, "ex.jsonl"], None, "not a folder"),
        ("infer --out /dev/null", [*infer, "/dev/null"], None, "not a folder"),
        ("infer --out a FIFO named .sqlite3", [*infer, "p.sqlite3"], fifo("p.sqlite3"), "not a regular file"),
        ("infer --out a folder named .sqlite3", [*infer, "p.sqlite3"], lambda d: (d / "p.sqlite3").mkdir(), "p.sqlite3"),
        ("generate -o a directory", [*generate, "outdir"], lambda d: (d / "outdir").mkdir(), "not a regular file"),
        ("generate -o a FIFO", [*generate, "pipe"], fifo("pipe"), "not a regular file"),
        ("generate -o under a file", [*generate, "ex.jsonl/out.jsonl"], None, "is a file, not a folder"),
        ("generate -o the requests file", [*generate, "requests.jsonl"], None, "also an input"),
    ]:
        add(Case(f"batch target: {name}", "batch target", args, fragment=fragment,
                 setup=both(batch_files, setup) if setup else batch_files))
    # Each row is ~430 bytes: two fit under the limit, the third fails; the rescue file takes the two finished then.
    add(Case("batch target: the disk fills mid-run: rows kept in a rescue file", "batch target",
             ["--no-cache", *generate, "out.jsonl"], fragment="kept in", file_size_limit=1000,
             setup=both(batch_files, lambda d: (d / "tmp").mkdir()),
             env={"TMPDIR": "tmp", "HYPERALIGN_CONCURRENCY": "1"}, check=_rescued_after_full_disk))

    # Names at NAME_MAX (255 bytes): what fits is written (temporary, lock and rescue names included), what does
    # not is refused up front.
    for name, args, expect, fragment in [
        ("infer -o a 255-byte name", ["infer", "ex.jsonl", "--user", "bev", "-o", "p" * 250 + ".json"], "accept", None),
        ("infer -o a 256-byte name", ["infer", "ex.jsonl", "--user", "bev", "-o", "p" * 251 + ".json"], "reject",
         "too long"),
        ("generate --tasks -o a 255-byte name", ["generate", "--strategy", "zero-shot", "--tasks", "tasks.jsonl",
                                                  "-o", "o" * 249 + ".jsonl"], "accept", None),
        ("batch generate -o a 255-byte name", [*generate, "o" * 249 + ".jsonl"], "accept", None),
        ("batch generate -o a 256-byte name", [*generate, "o" * 250 + ".jsonl"], "reject", "256 bytes"),
        ("batch infer --out a 255-byte folder", [*infer, "f" * 255], "accept", None),
        ("batch infer --out a 254-byte store (its -journal would not fit)", [*infer, "s" * 246 + ".sqlite3"],
         "reject", "-journal"),
        ("batch infer --out a 128-character non-ASCII name (256 bytes)", [*infer, "é" * 128], "reject", "bytes"),
    ]:
        add(Case(f"NAME_MAX: {name}", "NAME_MAX", args, expect=expect, fragment=fragment, setup=batch_files))

    # Two writers on one output: the second fails at once naming the first; a dead one's lock blocks nothing.
    for name, args, output, kind in [
        ("batch generate", [*generate, "out.jsonl"], "out.jsonl", "file"),
        ("batch infer to a folder", [*infer, "profiles"], "profiles", "folder"),
        ("batch infer to a store", [*infer, "p.sqlite3"], "p.sqlite3", "file"),
    ]:
        add(Case(f"concurrent writers: {name} while another batch writes", "concurrent writers", args,
                 fragment="another batch is writing", setup=both(batch_files, holding(output, kind)), check=released))
    add(Case("concurrent writers: the lock file of a killed batch", "concurrent writers", [*generate, "out.jsonl"],
             expect="accept", setup=both(batch_files, lambda d: write(d / ".out.jsonl.batch.lock", "pid 1 on gone\n")),
             check=out_rows("out.jsonl", len(TASKS))))

    # A Ray cluster that is not there: one line, exit 2, within the connect timeout, nothing of Ray's printed.
    ray = [*infer, "profiles", "--engine", "ray"]
    for name, args, env, fragment in [
        ("--ray-address where nothing listens", [*ray, "--ray-address", f"127.0.0.1:{_free_port()}"], {},
         "cannot be reached"),
        ("RAY_ADDRESS where nothing listens", ray, {"RAY_ADDRESS": f"127.0.0.1:{_free_port()}"}, "cannot be reached"),
        ("ray:// where nothing listens", [*ray, "--ray-address", f"ray://127.0.0.1:{_free_port()}"], {},
         "cannot be reached"),
        ("an address that is not host:port", [*ray, "--ray-address", "head:port"], {}, "host:port"),
        ("an address that never answers", [*ray, "--ray-address", _silent_address()],
         # Ray either waits out the bound ("no answer within 3 s") or gives up at once ("cannot join it"): one
         # line naming the cluster either way, never a hang.
         {"HYPERALIGN_RAY_CONNECT_TIMEOUT": "3"}, "the Ray cluster at 127.0.0.1:"),
        ("--ray-connect-timeout 0", [*ray, "--ray-address", "127.0.0.1:1", "--ray-connect-timeout", "0"], {},
         "--ray-connect-timeout"),
    ]:
        add(Case(f"ray unreachable: {name}", "ray unreachable", args, fragment=fragment,
                 setup=both(batch_files, lambda d: (d / "tmp").mkdir()), env={"TMPDIR": "tmp", **env},
                 check=_nothing_of_rays))
    return c


def _nothing_of_rays(_: Path, outcome: Outcome) -> str | None:
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    return None if len(lines) == 1 else f"more than the one error line: {lines[:3]}"
