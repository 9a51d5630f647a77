"""The input lines of a batch: one user (id, examples, attributes) or one request (user, task) per JSONL line. A line
that is not valid is reported with its number; the run either stops there or skips it, as the caller chose."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from ..errors import InputError
from ..io import MAX_LOG_BYTES, check_name, jsonl_lines, parse_json_object, read_text_file, validate_row
from ..pipeline.generate import Strategy
from ..profiles.model import MAX_USER_ID, UserExample

BadLinePolicy = Literal["fail", "skip"]
R = TypeVar("R", bound=BaseModel)


def _plain_id(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be a string or a whole number")
    return str(value)


class UserRecord(BaseModel):
    """{"id", "examples": [{"text", "prompt"?}, ...], "attributes"?: {name: value}}"""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=MAX_USER_ID)
    examples: list[UserExample] = Field(min_length=1, max_length=1_000)
    attributes: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id", mode="before")(classmethod(lambda cls, v: _plain_id(v)))


class RequestRecord(BaseModel):
    """{"id"?, "user_id", "task", "strategy"?}: write `task` as `user_id` would."""

    model_config = ConfigDict(extra="forbid")
    id: str | StrictInt | None = None
    user_id: str = Field(min_length=1, max_length=MAX_USER_ID)
    task: str = Field(min_length=1)
    strategy: Strategy | None = None
    examples: list[UserExample] = Field(default_factory=list, max_length=100, description="for few-shot")

    _user = field_validator("user_id", mode="before")(classmethod(lambda cls, v: _plain_id(v)))


@dataclass(frozen=True)
class BadLine:
    number: int
    message: str


def content_key(record: BaseModel, seen: set[str]) -> str:
    """The key of a record without an id: a hash of its content, so that a resumed batch recognizes its finished
    work whatever the lines' order (by line number, reordered lines were attributed to each other's outputs).
    The second identical record gets "#2", and so on."""
    digest = hashlib.sha256(record.model_dump_json().encode("utf-8", "surrogatepass")).hexdigest()[:16]
    key, copy = f"sha-{digest}", 1
    while key in seen:
        copy += 1
        key = f"sha-{digest}#{copy}"
    return key


def read_records(path: Path, model: type[R], key: str, on_bad_line: BadLinePolicy) -> tuple[list[tuple[str, R]],
                                                                                            list[BadLine]]:
    """(key, record) for every valid line, in file order, and the lines skipped. `key` names the field that
    identifies a record (a line without one is keyed by its content: `content_key`); a key seen twice is a bad
    line."""
    records: list[tuple[str, R]] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    for number, line in enumerate(jsonl_lines(read_text_file(path, limit=MAX_LOG_BYTES)), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = validate_row(model, parse_json_object(line, where), where)
            value = getattr(record, key)
            record_key = str(value) if value is not None else content_key(record, seen)
            check_name(record_key, f"{where}: the {key}", MAX_USER_ID)
            if record_key in seen:
                raise InputError(f"{where}: duplicate {key} {record_key!r}")
        except InputError as exc:
            if on_bad_line == "fail":
                raise InputError(f"{exc} (skipping bad lines goes on without such lines)") from None
            bad.append(BadLine(number, str(exc)))
            continue
        seen.add(record_key)
        records.append((record_key, record))
    if not records and not bad:
        raise InputError(f"{path}: holds no records")
    if not records:  # skipping every line leaves nothing to do: that is bad input, not a finished batch
        raise InputError(f"{path}: all {len(bad)} lines are invalid, e.g. line {bad[0].number}: {bad[0].message}")
    return records, bad
