"""Reading the user's files: regular files below a size limit, valid UTF-8 without NUL bytes; JSON and JSONL
checked value by value. Every fault is an InputError naming the file (and line)."""


from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import InputError, describe_validation_error

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


def check_json_value(value: Any, where: str, depth: int = 0, path: str = "") -> None:
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
            check_json_value(item, where, depth + 1, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_value(item, where, depth + 1, f"{path}[{index}]")


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
    check_json_value(value, where)
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
