"""Where a batch writes, checked before any LLM call and held for the whole run; what happens when it fails.

- `check_spot`: the output is what it should be (a folder, or a regular file), every folder on its way is one, it
  can be written there (a probe file: as root, a read-only file system is the only refusal), and every name the
  batch creates there (the output, SQLite's journal files, the lock) fits the file system's NAME_MAX;
- `check_room`: the file system has room for about what the batch will write;
- `OutputLock`: one batch per output at a time (filelock): a second one fails at once, naming the output and the
  process that holds it — waiting would only queue a run whose every unit the first one is doing;
- `Salvage`: once the output cannot be written mid-run (a full disk, a file system turned read-only, a folder
  swapped for a file), each finished result that has nowhere to go is kept in one rescue file in the temp folder
  (`io.rescue`), no further unit starts, and the units never started are counted for the rerun."""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import filelock

from ..errors import InputError
from ..io import append_whole, lock_path, rescue

NAME_MAX = 255  # when the file system does not say
PATH_MAX = 4096
MIN_FREE_BYTES = 1 << 20
# Lower bounds of what one finished unit takes on disk: a profile file or row, a generation row.
UNIT_BYTES = {"infer": 4096, "generate": 1024}


@dataclass(frozen=True)
class OutputSpot:
    """An output on disk: a folder the batch writes files into, or one file (a JSONL log, an SQLite store) beside
    which `companions` are created (SQLite's "-journal", "-wal", "-shm")."""

    path: Path
    kind: Literal["folder", "file"]
    companions: tuple[str, ...] = ()

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def lock(self) -> Path:
        """Beside the output, so that a folder need not exist to be locked (io.lock_path: bounded name)."""
        return lock_path(self.path, "batch")

    def names(self) -> list[str]:
        """Every name the batch creates in the output's parent folder (the per-user files of a folder and the
        temporary files of atomic writes are bounded by construction)."""
        return [self.path.name, *(self.path.name + c for c in self.companions), self.lock.name]


def _status(path: Path, spot: OutputSpot) -> Literal["folder", "other", "missing"]:
    try:
        if path.is_dir():
            return "folder"
        return "other" if path.exists() or path.is_symlink() else "missing"
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # a name NAME_MAX refuses cannot exist: said by check_spot
            return "missing"
        raise InputError(f"{spot.path}: cannot be used as an output ({exc.strerror or exc})") from None


def _nearest_existing(directory: Path, spot: OutputSpot) -> tuple[Path, list[str]]:
    """The deepest existing folder on the way to `directory`, and the names still to be created below it."""
    missing: list[str] = []
    current = directory.absolute()
    while True:
        status = _status(current, spot)
        if status == "folder":
            return current, missing[::-1]
        if status == "other":
            raise InputError(f"{spot.path}: {current} is a file, not a folder")
        missing.append(current.name)
        current = current.parent


def _limit(folder: Path, name: str, default: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pathconf(folder, name))
    return default


def check_spot(spot: OutputSpot) -> None:
    """Refuse, before any work, an output that cannot be written (module docstring)."""
    path = spot.path
    status = _status(path, spot)
    if status == "other" and spot.kind == "folder":
        raise InputError(f"{path}: exists and is not a folder (a profile store needs a URL or a .sqlite3 file)")
    if status != "missing" and spot.kind == "file" and not path.is_file():
        raise InputError(f"{path}: is not a regular file (a folder, device, pipe or socket); give a file path")
    existing, missing = _nearest_existing(spot.directory, spot)
    name_max = _limit(existing, "PC_NAME_MAX", NAME_MAX)
    for name in [*missing, *spot.names()]:
        size = len(os.fsencode(name))
        if size > name_max:
            raise InputError(f"{path}: the name {name[:40]}… is {size} bytes long; this file system allows "
                             f"{name_max} per name{_companion_note(spot)}; choose a shorter name")
    longest = max((len(os.fsencode(str(spot.directory.absolute() / n))) for n in spot.names()), default=0)
    if longest >= _limit(existing, "PC_PATH_MAX", PATH_MAX):
        raise InputError(f"{path}: the path is too long for this file system ({longest} bytes); choose a shorter one")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".hyperalign-probe-")
        try:
            os.write(handle, b"x")
        finally:
            os.close(handle)
            os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{path}: cannot write in {existing} ({exc.strerror or exc})") from None


def _companion_note(spot: OutputSpot) -> str:
    if not spot.companions:
        return ""
    return f" (the batch also creates {', '.join(repr(spot.path.name[:8] + '…' + c) for c in spot.companions)})"


def check_room(spot: OutputSpot, units: int, kind: str) -> None:
    """Refuse a batch whose results clearly cannot fit on the output's file system (a full disk)."""
    existing, _ = _nearest_existing(spot.directory, spot)
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return
    needed = MIN_FREE_BYTES + units * UNIT_BYTES[kind]
    if free < needed:
        raise InputError(f"{spot.path}: only {free / 2**20:.1f} MiB free on its file system; {units} results need "
                         f"at least {needed / 2**20:.1f} MiB; free some space or write elsewhere")


class OutputLock:
    """Held while a batch plans and writes `spot` (module docstring). The lock file records who holds it; it is
    removed when the batch ends (a kill leaves it behind, unlocked: the next batch takes it over)."""

    def __init__(self, spot: OutputSpot):
        self.spot = spot
        self._lock = filelock.FileLock(str(spot.lock), timeout=0)

    def __enter__(self) -> OutputLock:
        holder = self._holder()  # read before trying: an older filelock truncates the file when it opens it
        try:
            self._lock.acquire()
        except filelock.Timeout:
            who = holder or f"a process holding {self.spot.lock}"
            raise InputError(f"{self.spot.path}: another batch is writing to it ({who}); let it finish, or stop "
                             "it and rerun (finished work is kept), or write to another output") from None
        except OSError as exc:
            raise InputError(f"{self.spot.path}: cannot create its lock file {self.spot.lock} "
                             f"({exc.strerror or exc})") from None
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        with contextlib.suppress(OSError), open(self.spot.lock, "w", encoding="utf-8") as note:
            note.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
        return self

    def _holder(self) -> str:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return " ".join(self.spot.lock.read_text(encoding="utf-8")[:200].split())
        return ""

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        with contextlib.suppress(OSError):
            self.spot.lock.unlink()  # while still held: no other batch holds a lock on this file
        self._lock.release()


class Feed:
    """The units handed to an engine one at a time; after `stop()` no more are handed out."""

    def __init__(self, works: Iterable[Any]):
        self._works = iter(works)
        self.stopped = False
        self.started = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self.stopped:
            raise StopIteration
        work = next(self._works)
        self.started += 1
        return work

    def stop(self) -> None:
        self.stopped = True

    def rest(self) -> Iterator[Any]:
        """The units not handed out."""
        return self._works


@dataclass
class Salvage:
    """What became of a batch whose output failed mid-run (module docstring). `failure` is the first write error;
    `path` the rescue file (one JSON document per line, as the output would have held it)."""

    intended: str
    failure: str | None = None
    path: Path | None = None
    kept: int = 0
    lost: int = 0
    not_started: int = 0

    def keep(self, document: dict[str, Any], error: InputError) -> str:
        """Keep one finished result that could not be written; what to tell about it."""
        self.failure = self.failure or str(error)
        line = json.dumps(document, ensure_ascii=False) + "\n"
        if self.path is None:
            self.path = rescue(line, Path(self.intended))
            kept = self.path is not None
        else:
            kept = append_whole(self.path, line)  # a row that does not fit is not left torn in the file
        reason = str(error)
        if kept:
            self.kept += 1
            return f"finished but not written ({reason}); kept in {self.path}"
        self.lost += 1
        return f"finished but not written ({reason}), and no rescue file could be written either"

    def summary(self) -> str:
        """The one line that ends such a batch (exit 2)."""
        kept = f"{self.kept} finished result{'s' if self.kept != 1 else ''} kept in {self.path}" if self.kept else ""
        lost = f"{self.lost} could not be kept anywhere" if self.lost else ""
        left = f"{self.not_started} not started" if self.not_started else ""
        parts = "; ".join(p for p in (kept, lost, left) if p)
        return (f"the output stopped taking results mid-run: {self.failure}; {parts}. Fix the output and rerun: "
                "finished results are skipped")
