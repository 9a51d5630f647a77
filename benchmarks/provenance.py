"""What every benchmark script records next to its report: the exact command (run from the repository root, with
paths relative to it), the run's configuration, the code version, the machine and the wall time. A report in
benchmarks/results/NAME.md comes with benchmarks/results/NAME.json; nothing in either names a path of the machine
it ran on.

    from provenance import ROOT, run_recorded
    run_recorded("ccat50-embedded-5x2", "benchmarks/authorship_ccat50.py", ["hyperalign", "eval", ...],
                 run_dir=Path("runs/x"))
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = "../shared/data"  # relative to the repository root, as every command here is run from it


def relative(value: Any) -> Any:
    """Machine paths (this checkout, its parent) rewritten relative to the repository root, recursively."""
    if isinstance(value, str):
        for base, shown in ((str(ROOT), "."), (str(ROOT.parent), "..")):
            value = value.replace(base + "/", shown + "/").replace(base, shown)
        return value
    if isinstance(value, list):
        return [relative(v) for v in value]
    if isinstance(value, dict):
        return {k: relative(v) for k, v in value.items()}
    return value


def code_version() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    # A run's archive committed under benchmarks/runs/ (so a run spanning sessions keeps its finished work) changes
    # while it runs: it is the run's data, not the code that ran, so it does not make the code "dirty".
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/runs")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(dirty)}


def machine() -> dict[str, Any]:
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else None
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory, 1) if memory else None,
            "python": platform.python_version(), "platform": platform.platform(terse=True)}


def run_recorded(name: str, script: str, command: list[str], *, run_dir: Path | None = None,
                 extra: dict[str, Any] | None = None, copy: dict[str, str] | None = None) -> int:
    """Run `command` from the repository root; on success copy the run's report.md (and `copy`: run file -> result
    name) into benchmarks/results/ and write NAME.json beside it. Returns the command's exit status."""
    shown = [("hyperalign" if part == _hyperalign() else part) for part in command]
    print("$ " + shlex.join(shown), flush=True)
    version = code_version()  # the code that runs, not whatever is checked out when it ends
    # A resumed run's invocation times only what was left to do: say so beside the number.
    resumed = run_dir is not None and (ROOT / run_dir / "config.json").exists()
    started = time.perf_counter()
    status = subprocess.call(command, cwd=ROOT)
    wall = time.perf_counter() - started
    print(f"wall time: {wall:.0f} s (exit {status})")
    if status != 0:
        return status
    RESULTS.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "report": f"benchmarks/results/{name}.md", "script": script, "command": shlex.join(shown),
        "cwd": "the repository root", "wall_time_s": round(wall, 1),
        "wall_time_covers": "this invocation only (it resumed a run folder)" if resumed else "the whole run",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": version, "machine": machine(), **(extra or {}),
    }
    if run_dir is not None:
        run_dir = ROOT / run_dir
        if (run_dir / "config.json").exists():
            record["run_config"] = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        if (run_dir / "report.md").exists():
            (RESULTS / f"{name}.md").write_text(relative((run_dir / "report.md").read_text(encoding="utf-8")),
                                                encoding="utf-8")
        for source, target in (copy or {}).items():
            shutil.copyfile(run_dir / source, RESULTS / target)
            record.setdefault("files", []).append(f"benchmarks/results/{target}")
    (RESULTS / f"{name}.json").write_text(json.dumps(relative(record), indent=2) + "\n", encoding="utf-8")
    print(f"recorded: benchmarks/results/{name}.md, benchmarks/results/{name}.json")
    return 0


def _hyperalign() -> str:
    return str(Path(sys.executable).with_name("hyperalign"))


def hyperalign(*args: str) -> list[str]:
    """The command line of this environment's `hyperalign`."""
    return [_hyperalign(), *args]


class Recorder:
    """For a benchmark that runs in this process: started when made (the code version and the clock), then
    `write(markdown, **record)` writes benchmarks/results/NAME.md and NAME.json with the command that ran it."""

    def __init__(self, name: str, script: str):
        self.name, self.script = name, script
        self.command = shlex.join(["python", script, *sys.argv[1:]])
        self.version = code_version()
        self.started = time.perf_counter()

    def write(self, markdown: str, **record: Any) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{self.name}.md").write_text(relative(markdown), encoding="utf-8")
        (RESULTS / f"{self.name}.json").write_text(json.dumps(relative({
            "report": f"benchmarks/results/{self.name}.md", "script": self.script, "command": self.command,
            "cwd": "the repository root", "wall_time_s": round(time.perf_counter() - self.started, 1),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "code": self.version,
            "machine": machine(), **record}), indent=2) + "\n", encoding="utf-8")
        print(f"recorded: benchmarks/results/{self.name}.md, benchmarks/results/{self.name}.json")
