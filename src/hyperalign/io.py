"""The file boundary: reading the user's files and writing results. Every fault becomes an InputError that names
the file (and line), and nothing finished is lost:

- inputs must be regular files (a device such as /dev/zero, or a FIFO, would read forever or block) below a size
  limit, valid UTF-8, without NUL bytes;
- JSONL is split on "\\n" only (a raw U+2028 inside a JSON string is legal JSON), every value is checked (nesting
  depth, huge integers, NaN, duplicate keys, lone surrogates), and each line must be a JSON object;
- `JsonlLog` is the one append-only log of finished work for every writer (generate --tasks, run folders, DITTO
  outputs): it opens the file only when the first row is written, tolerates and repairs a line torn by a kill or a
  full disk, and locks against a second writer;
- `write_atomically` replaces a file in one step and never leaves a temporary file behind; `write_or_rescue` keeps
  a result that cannot be written where it was asked to go.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from .errors import InputError, describe_validation_error

M = TypeVar("M", bound=BaseModel)

# Larger inputs are refused rather than read: no examples, tasks or profile file is anywhere near this.
MAX_INPUT_BYTES = 256 * 1024 * 1024
# Logs of finished work and run-folder files may grow larger (thousands of generations).
MAX_LOG_BYTES = 4 * 1024 * 1024 * 1024
MAX_JSON_DEPTH = 64
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_text(value: str, what: str) -> str:
    """Refuse text that Python can hold but that no file, database or encoder can: a lone surrogate (from a JSON
    escape such as "\\ud800", or from undecodable bytes in a command-line argument); and NUL, which C libraries
    (llama.cpp, SQLite's text functions) read as the end of the text."""
    found = _SURROGATE.search(value)
    if found:
        raise InputError(
            f"{what}: contains an invalid character (lone surrogate U+{ord(found.group()):04X} at position "
            f"{found.start()}); the text is not valid Unicode"
        )
    nul = value.find("\x00")
    if nul >= 0:
        raise InputError(f"{what}: contains a NUL character at position {nul}")
    return value


def check_name(value: str, what: str, max_length: int = 200) -> str:
    """An identifier a person types (a user id, a task id): 1 to max_length characters, no control characters."""
    check_text(value, what)
    if _CONTROL.search(value):
        raise InputError(f"{what} {value!r} contains a control character")
    if not value.strip():
        raise InputError(f"{what} is empty")
    if len(value) > max_length:
        raise InputError(f"{what} is {len(value)} characters long; at most {max_length} are allowed")
    return value


def _stat_input(path: Path, limit: int) -> os.stat_result:
    # stat, not open: opening a FIFO blocks until a writer appears.
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except NotADirectoryError:
        raise InputError(f"{path}: a part of this path is a file, not a directory") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: is not a regular file (a device, pipe or socket); give a file")
    if info.st_size > limit:
        raise InputError(f"{path}: is {info.st_size / 2**20:,.0f} MiB, larger than the limit of {limit / 2**20:,.0f} MiB")
    return info


def read_bytes(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    path = Path(path)
    size = _stat_input(path, limit).st_size
    chunks, total = [], 0
    try:
        with path.open("rb") as source:
            # Read what stat promised, then whatever the file grew by, never more than the limit: read(limit)
            # would allocate the whole limit up front.
            while True:
                chunk = source.read(max(size + 1 - total, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise InputError(f"{path}: larger than the limit of {limit / 2**20:,.0f} MiB")
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return b"".join(chunks)


def decode_text(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not valid UTF-8 (bad byte at offset {exc.start}); save the file as UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise InputError(f"{where}: contains a NUL character at offset {nul}; this is not a text file")
    return text


def read_text_file(path: Path, *, allow_empty: bool = False, limit: int = MAX_INPUT_BYTES) -> str:
    text = decode_text(read_bytes(path, limit), str(path))
    if not allow_empty and not text.strip():
        raise InputError(f"{path}: the file is empty")
    return text


def jsonl_lines(text: str) -> list[str]:
    """JSONL separates records by "\\n" (a trailing "\\r" is tolerated); str.splitlines would also split on U+2028,
    U+0085 and other characters that are legal inside a JSON string."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise ValueError(f"duplicate key {key!r}")
        value[key] = item
    return value


def _check_value(value: Any, where: str, depth: int = 0, path: str = "") -> None:
    """`depth` counts the arrays and objects around `value`."""
    if isinstance(value, (dict, list)) and depth >= MAX_JSON_DEPTH:
        raise InputError(f"{where}: nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        check_text(value, f"{where}{f', field {path!r}' if path else ''}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{where}: a number{f' in field {path!r}' if path else ''} is too large to be read")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, f"{where}, a key")
            _check_value(item, where, depth + 1, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, where, depth + 1, f"{path}[{index}]")


def parse_json(text: str, where: str) -> Any:
    """json.loads with every fault as an InputError: syntax, nesting too deep for the parser, integers beyond
    Python's digit limit, NaN/Infinity, duplicate keys, and lone surrogates in any string."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply to be read") from None
    except ValueError as exc:  # integer digit limit, NaN, duplicate keys
        raise InputError(f"{where}: {exc}") from None
    _check_value(value, where)
    return value


def parse_json_object(text: str, where: str) -> dict[str, Any]:
    value = parse_json(text, where)
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSONL input file."""
    for number, line in enumerate(jsonl_lines(read_text_file(path)), start=1):
        if line.strip():
            yield number, parse_json_object(line, f"{path}, line {number}")


def validate_row(model: type[M], value: dict[str, Any], where: str) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InputError(f"{where}: {describe_validation_error(exc, model)}") from None


def read_jsonl_models(path: Path, model: type[M]) -> list[M]:
    return [validate_row(model, value, f"{path}, line {number}") for number, value in iter_jsonl(path)]


def read_json_file(path: Path, *, limit: int = MAX_LOG_BYTES) -> Any:
    """A JSON document the program wrote (a run's config or results): damage is named, never a traceback."""
    path = Path(path)
    text = decode_text(read_bytes(path, limit), str(path))
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    return parse_json(text, str(path))


# --- writing ------------------------------------------------------------------------------------------------------

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


def rescue(text: str, intended: Path) -> Path | None:
    """Keep a finished result that could not be written where it was asked to go: a file in the temp directory."""
    try:
        handle, name = tempfile.mkstemp(prefix=f"hyperalign-rescued-{Path(intended).name[:100]}-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as sink:
            sink.write(text)
        return Path(name)
    except OSError:
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
            _check_value(row, "the row")
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
