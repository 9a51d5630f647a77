"""Writing results: atomic replacement, rescue files for what cannot be written where asked, lock files, and
`JsonlLog`, the one append-only log of finished work."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..errors import InputError
from .read import MAX_LOG_BYTES, check_json_value, decode_text, parse_json_object, read_bytes


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(output: Path, *inputs: Path | None, directory: bool = False) -> Path:
    """Refuse, before any work is done, an output that would overwrite an input or cannot be a file."""
    output = Path(output)
    for source in inputs:
        if source is not None and (_same_file(output, Path(source)) or output.resolve() == Path(source).resolve()):
            raise InputError(f"{output}: is also an input of this command; writing there would destroy it")
    if not directory and output.is_dir():
        raise InputError(f"{output}: is a directory; give a file path")
    if not directory and output.exists() and not output.is_file():
        # Replacing a device or a pipe (e.g. /dev/null) would destroy it, or block.
        raise InputError(f"{output}: is not a regular file (a device, pipe or socket); give a file path")
    if directory and output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a directory")
    for parent in output.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{output}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"{output}: cannot write in {parent} (permission denied)")
            break
    return output


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a reader sees the old file or the new one, never half of it, and no
    temporary file is left behind whatever fails."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file path")
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: is not a regular file (a device, pipe or socket); give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name must fit NAME_MAX (255) even when the target's own name nearly fills it.
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({_os_reason(exc)})") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as sink:
            sink.write(text)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(name, path)
    except UnicodeEncodeError as exc:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise InputError(f"{path}: cannot write it (the text is not valid Unicode: {exc.reason})") from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise InputError(f"{path}: cannot write it ({_os_reason(exc)})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def append_whole(path: Path, text: str) -> bool:
    """Append `text` whole or not at all: where the disk (or a file-size limit) takes only part of it, that part is
    cut off again, so a file of lines never ends in a torn one. Unbuffered, so nothing is left to flush later."""
    try:
        with open(path, "ab", buffering=0) as sink:
            start = sink.seek(0, os.SEEK_END)
            rest = memoryview(text.encode("utf-8"))
            try:
                while rest:  # a raw write may take part of it and say how much
                    rest = rest[sink.write(rest):]
            except OSError:
                sink.truncate(start)
                return False
    except OSError:
        return False
    return True


def rescue(text: str, intended: Path) -> Path | None:
    """Keep a finished result that could not be written where it was asked to go: a file in the temp directory,
    holding the whole text or, where even that cannot be written, nothing (None)."""
    try:
        handle, name = tempfile.mkstemp(prefix=f"hyperalign-rescued-{Path(intended).name[:100]}-", suffix=".txt")
        os.close(handle)
    except OSError:
        return None
    if append_whole(Path(name), text):
        return Path(name)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def write_or_rescue(path: Path, text: str) -> None:
    check_output_path(path)  # a path that can never be written is refused as such, before anything is rescued
    try:
        write_atomically(path, text)
    except InputError as exc:
        kept = rescue(text, path)
        raise InputError(f"{exc}; the result is kept in {kept}" if kept else str(exc)) from None


def lock_path(path: Path, purpose: str) -> Path:
    """A hidden lock file beside `path`, named for what it guards ("append", "batch": two purposes never share one
    file, or one process would wait for itself). Its name is bounded, so any name that fits NAME_MAX has a lock that
    fits too."""
    name = Path(path).name
    if len(name) > 100:
        name = f"{name[:100]}-{hashlib.sha256(os.fsencode(name)).hexdigest()[:12]}"
    return Path(path).parent / f".{name}.{purpose}.lock"


class JsonlLog:
    """An append-only JSONL file of finished work, shared by every writer that must resume.

    A row is written as one line, flushed and synced before `append` returns. The file is created only when the
    first row is written, so an interrupted start leaves nothing behind. A last line without its newline was torn
    by a kill or a full disk: reading skips it (its unit of work is simply redone) and the next append cuts it off.
    A damaged line anywhere else is reported with its number, never silently skipped."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()  # this process's writers
        # Other processes' writers (e.g. two reruns of one command) wait too: a lock file beside the log, hidden so a
        # run folder's listing shows results only. Not thread-local: a batch's writer may close on another thread.
        self._file_lock = FileLock(lock_path(self.path, "append"), thread_local=False)

    def exists(self) -> bool:
        return self.path.exists()

    def rows(self) -> list[dict[str, Any]]:
        return [row for _, row in self.numbered_rows()]

    def numbered_rows(self) -> list[tuple[int, dict[str, Any]]]:
        if not self.path.exists():
            return []
        data = read_bytes(self.path, MAX_LOG_BYTES)
        lines = data.split(b"\n")
        rows = []
        for number, raw in enumerate(lines, start=1):
            torn = number == len(lines)  # the text after the last newline: empty, or a torn line
            if not raw.strip():
                continue
            where = f"{self.path}, line {number}"
            try:
                row = parse_json_object(decode_text(raw, where).removesuffix("\r"), where)
            except InputError as exc:
                if torn:
                    break
                raise InputError(f"{exc}; this file holds finished results: repair or delete that line") from None
            rows.append((number, row))
        return rows

    def _encode(self, row: dict[str, Any]) -> bytes:
        # Only what rows() can read back: no lone surrogates or NUL, no NaN, nothing that is not JSON.
        try:
            line = (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
            check_json_value(row, "the row")
        except (TypeError, ValueError, InputError) as exc:  # UnicodeEncodeError is a ValueError
            raise InputError(f"{self.path}: a result cannot be written ({exc})") from None
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"{self.path}: is not a regular file; finished results cannot be written there")
        return line

    @contextmanager
    def _opened(self) -> Iterator[Any]:
        """The file open for appending, its torn last line cut off, while no other process appends to it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._file_lock, self.path.open("ab") as sink:
            self._repair_tail(sink)
            yield sink

    def append(self, row: dict[str, Any]) -> None:
        line = self._encode(row)
        with self._lock:
            try:
                with self._opened() as sink:
                    sink.write(line)
                    sink.flush()
                    os.fsync(sink.fileno())
            except OSError as exc:
                raise InputError(f"{self.path}: cannot append a finished result ({_os_reason(exc)})") from None

    @contextmanager
    def writer(self, sync_seconds: float = 1.0) -> Iterator[Callable[[dict[str, Any]], None]]:
        """For one writer appending many rows fast (a batch): the file stays open and locked; each row is written
        and flushed at once, so a killed process loses nothing; it is synced to disk at most every `sync_seconds`
        and at the end — a machine that loses power may lose that last second of rows, which a rerun redoes."""
        sink: Any = None
        synced = time.monotonic()
        opened = contextlib.ExitStack()

        def append(row: dict[str, Any]) -> None:
            nonlocal sink, synced
            line = self._encode(row)
            with self._lock:
                try:
                    sink = sink or opened.enter_context(self._opened())
                    sink.write(line)
                    sink.flush()
                    if time.monotonic() - synced >= sync_seconds:
                        os.fsync(sink.fileno())
                        synced = time.monotonic()
                except OSError as exc:
                    raise InputError(f"{self.path}: cannot append a finished result ({_os_reason(exc)})") from None

        try:
            yield append
        finally:
            if sink is not None:
                with contextlib.suppress(OSError):
                    os.fsync(sink.fileno())
            opened.close()

    def _repair_tail(self, sink: Any) -> None:
        size = sink.seek(0, os.SEEK_END)
        if size == 0:
            return
        with self.path.open("rb") as source:
            source.seek(max(0, size - 1))
            if source.read(1) == b"\n":
                return
            # Find the start of the unterminated last line.
            start = 0
            position = size
            while position > 0:
                step = min(65536, position)
                position -= step
                source.seek(position)
                chunk = source.read(step)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    start = position + newline + 1
                    break
            source.seek(start)
            tail = source.read()
        try:
            parse_json_object(decode_text(tail, str(self.path)), str(self.path))  # read as rows() reads it
            sink.write(b"\n")  # a whole row that only lacks its newline: keep it
        except InputError:
            sink.truncate(start)  # torn: drop it, its unit of work is redone
