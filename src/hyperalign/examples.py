"""Reading the user's files: every fault becomes an InputError that names the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import InputError, first_error
from .profile import UserExample

M = TypeVar("M", bound=BaseModel)


def read_text_file(path: Path) -> str:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 (bad byte at offset {exc.start}); save the file as UTF-8") from None
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    return text


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line."""
    for number, line in enumerate(read_text_file(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}, line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise InputError(f"{path}, line {number}: expected a JSON object, got {type(value).__name__}")
        yield number, value


def read_jsonl_models(path: Path, model: type[M]) -> list[M]:
    rows: list[M] = []
    for number, value in iter_jsonl(path):
        try:
            rows.append(model.model_validate(value))
        except ValidationError as exc:
            field, message = first_error(exc, "line")
            raise InputError(f"{path}, line {number}: field '{field}': {message}") from None
    return rows


def read_examples(path: Path) -> list[UserExample]:
    """JSONL lines {"prompt"?: str, "text": str}."""
    return read_jsonl_models(path, UserExample)
