"""A run folder: the config it ran with, and every finished unit of work appended as one JSONL line the moment it
completes. Rerunning skips what is there, so a killed run loses nothing (at most the line being written, which
loading tolerates). Shared by every evaluation."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..errors import InputError

ProgressHook = Callable[[str, int], Callable[[], None]]


def no_progress(stage: str, total: int) -> Callable[[], None]:
    return lambda: None


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def file(self, name: str) -> Path:
        return self.path / name

    def bind_config(self, config: BaseModel, identity: Iterable[str]) -> None:
        """Save the config; on a rerun, refuse one that would change finished work (e.g. another seed)."""
        target = self.file("config.json")
        current = json.loads(config.model_dump_json())
        # Only finished work binds: a run that failed before doing any may be rerun with corrected arguments.
        started = any(p.name not in {"config.json", "config.json.tmp"} for p in self.path.iterdir())
        if target.exists() and started:
            saved = json.loads(target.read_text(encoding="utf-8"))
            changed = [k for k in identity if saved.get(k) != current.get(k)]
            if changed:
                details = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
                raise InputError(
                    f"{self.path} holds a run with another configuration ({details}); use a new --out folder"
                )
        self.write_json("config.json", current)

    def write_json(self, name: str, value: Any) -> None:
        target = self.file(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        tmp.replace(target)

    def read_json(self, name: str) -> Any:
        target = self.file(name)
        if not target.exists():
            raise InputError(f"{target}: missing; is {self.path} a run folder?")
        return json.loads(target.read_text(encoding="utf-8"))

    def records(self, name: str) -> list[dict[str, Any]]:
        target = self.file(name)
        if not target.exists():
            return []
        rows = []
        lines = target.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):
                    break  # torn by a kill mid-write: that unit is simply redone
                raise InputError(f"{target}, line {number}: corrupt record") from None
        return rows

    def append(self, name: str, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            target = self.file(name)
            if target.exists() and target.stat().st_size:
                content = target.read_bytes()
                if not content.endswith(b"\n"):  # a line torn by a killed run: drop it, its unit is redone
                    with target.open("r+b") as sink:
                        sink.truncate(content.rfind(b"\n") + 1)
            with target.open("a", encoding="utf-8") as sink:
                sink.write(line)
                sink.flush()

    def done_keys(self, name: str) -> set[str]:
        return {row["key"] for row in self.records(name) if "key" in row}

    async def stage(
        self, name: str, label: str, jobs: dict[str, Callable[[], Awaitable[dict[str, Any]]]],
        progress: ProgressHook = no_progress,
    ) -> list[dict[str, Any]]:
        """Run the jobs whose key is not yet in `name`, appending each row as it finishes; return all rows."""
        done = self.done_keys(name)
        todo = {key: job for key, job in jobs.items() if key not in done}
        advance = progress(label, len(todo))

        async def one(key: str, job: Callable[[], Awaitable[dict[str, Any]]]) -> None:
            self.append(name, {"key": key, **await job()})
            advance()

        await asyncio.gather(*(one(key, job) for key, job in todo.items()))
        return self.records(name)
