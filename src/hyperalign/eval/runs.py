"""A run folder: the config it ran with, and every finished unit of work appended as one JSONL line the moment it
completes (`JsonlLog`, the one torn-line-safe log every writer uses). Rerunning skips what is there, so a killed run
loses nothing (at most the line being written, which loading tolerates and the next append cuts off). Every file
the folder reads back is checked: a damaged one is named, never a traceback. Shared by every evaluation."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import InputError, describe_validation_error
from ..io import JsonlLog, read_json_file, write_atomically

M = TypeVar("M", bound=BaseModel)

ProgressHook = Callable[[str, int], Callable[[], None]]


def no_progress(stage: str, total: int) -> Callable[[], None]:
    return lambda: None


def short_hash(value: Any) -> str:
    """A stable 12-character identity for a JSON-able value (e.g. which endpoint, model and judge produced rows)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: exists and is not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot create the run folder ({exc.strerror or exc})") from None
        self._logs: dict[str, JsonlLog] = {}

    def file(self, name: str) -> Path:
        return self.path / name

    def bind_config(self, config: BaseModel, identity: Iterable[str]) -> None:
        """Save the config; on a rerun, refuse one that would change finished work (e.g. another seed)."""
        target = self.file("config.json")
        current = json.loads(config.model_dump_json())
        # Only finished work binds: a run that failed before doing any may be rerun with corrected arguments.
        started = any(p.name != "config.json" and not p.name.startswith(".") for p in self.path.iterdir())
        if target.exists() and started:
            saved = self.read_json("config.json")
            if not isinstance(saved, dict):
                raise InputError(f"{target}: not a run configuration; use a new run folder")
            changed = [k for k in identity if saved.get(k) != current.get(k)]
            if changed:
                details = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
                raise InputError(
                    f"{self.path} holds a run with another configuration ({details}); use a new run folder"
                )
        self.write_json("config.json", current)

    def write_json(self, name: str, value: Any) -> None:
        write_atomically(self.file(name), json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")

    def read_json(self, name: str) -> Any:
        target = self.file(name)
        if not target.exists():
            raise InputError(f"{target}: missing; is {self.path} a run folder?")
        return read_json_file(target)

    def read_model(self, name: str, model: type[M]) -> M:
        """A JSON file of the folder, validated; damage is named with what to do about it."""
        try:
            return model.model_validate(self.read_json(name))
        except ValidationError as exc:
            raise InputError(f"{self.file(name)}: damaged ({describe_validation_error(exc, model)}); delete it "
                             "to rebuild it from the run's configuration") from None

    def log(self, name: str) -> JsonlLog:
        if name not in self._logs:
            self._logs[name] = JsonlLog(self.file(name))
        return self._logs[name]

    def records(self, name: str) -> list[dict[str, Any]]:
        return self.log(name).rows()

    def append(self, name: str, row: dict[str, Any]) -> None:
        self.log(name).append(row)

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

        # Every job starts at once and waits for the client's slots, so a job's wall time would count its wait
        # behind the others: a job that cares about its cost records its calls' own backend time instead.
        async def one(key: str, job: Callable[[], Awaitable[dict[str, Any]]]) -> None:
            row = await job()
            self.append(name, {"key": key, **row})
            advance()

        await asyncio.gather(*(one(key, job) for key, job in todo.items()))
        return self.records(name)
