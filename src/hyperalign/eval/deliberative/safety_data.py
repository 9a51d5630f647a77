"""Prompts and users for the deliberative-alignment evaluation.

A user is a set of messages written the same way: one jailbreak template applied to several harmful behaviours
(or, for benign control users, requests in one voice). k messages are the user's examples, the rest are test
requests. Loaders take TXT (one prompt a line), JSONL {"prompt", ...} and CSV with a named column, from any path."""

from __future__ import annotations

import csv
import io
import random
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, RootModel, model_validator

from ...errors import InputError
from ...io import iter_jsonl, parse_json, read_text_file

PLACEHOLDER = re.compile(r"\[INSERT PROMPT HERE\]|\[PROMPT\]|\[INPUT\]|\{prompt\}", re.IGNORECASE)


class SafetyPrompt(BaseModel):
    text: str
    source: str
    group: str = ""  # e.g. a risk tag or a voice


class SafetyUser(BaseModel):
    id: str
    kind: Literal["jailbreak", "benign"]
    template: str = ""
    examples: list[str] = Field(min_length=1)
    requests: list[str] = Field(min_length=1)
    behaviours: list[str]  # the plain behaviour behind each request (for the harm judge)

    @model_validator(mode="after")
    def _one_behaviour_per_request(self) -> SafetyUser:
        if len(self.behaviours) != len(self.requests):
            raise ValueError("needs one behaviour per request")
        return self


class SafetyUsers(RootModel[list[SafetyUser]]):
    """users.json of a run folder."""


def load_prompts(path: Path, column: str = "prompt") -> list[SafetyPrompt]:
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        prompts = [p for f in sorted(path.iterdir()) if f.suffix.lower() in {".txt", ".jsonl", ".csv", ".json"}
                   for p in load_prompts(f, column)]
        if not prompts:
            raise InputError(f"{path}: no .txt, .jsonl, .csv or .json prompt files")
        return prompts
    if suffix == ".jsonl":
        prompts = []
        for number, row in iter_jsonl(path):
            value = row.get(column)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{path}, line {number}: needs a non-empty string field {column!r}")
            group = row.get("group") or row.get("voice") or ",".join(row.get("intents", []) or [])
            prompts.append(SafetyPrompt(text=value.strip(), source=f"{path.name}:{number}", group=str(group)))
        return prompts
    text = read_text_file(path)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if column not in (reader.fieldnames or []):
            raise InputError(f"{path}: no column {column!r} (columns: {', '.join(reader.fieldnames or [])})")
        return [SafetyPrompt(text=row[column].strip(), source=f"{path.name}:{i + 2}")
                for i, row in enumerate(reader) if (row[column] or "").strip()]
    if suffix == ".json":
        data = parse_json(text, str(path))
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise InputError(f"{path}: expected a JSON list of strings")
        return [SafetyPrompt(text=x.strip(), source=f"{path.name}:{i}") for i, x in enumerate(data) if x.strip()]
    return [SafetyPrompt(text=line.strip(), source=f"{path.name}:{i + 1}")
            for i, line in enumerate(text.splitlines()) if line.strip()]


def apply_template(template: str, behaviour: str) -> str:
    if PLACEHOLDER.search(template):
        return PLACEHOLDER.sub(lambda _: behaviour, template)
    return f"{template.rstrip()}\n\n{behaviour}"


def jailbreak_users(
    behaviours: list[SafetyPrompt], templates: list[SafetyPrompt], *, users: int, shots: int, requests: int,
    seed: int, max_template_chars: int = 1500,
) -> list[SafetyUser]:
    """Each user: one template (short enough for the model's context) applied to shots + requests behaviours."""
    usable = [t for t in templates if len(t.text) <= max_template_chars]
    if len(usable) < users:
        raise InputError(f"only {len(usable)} templates are at most {max_template_chars} characters; asked for {users} users")
    need = shots + requests
    if len(behaviours) < need:
        raise InputError(f"{len(behaviours)} harmful behaviours; each user needs {need} (shots + requests)")
    rng = random.Random(seed)
    chosen = rng.sample(usable, users)
    result = []
    for index, template in enumerate(chosen):
        picked = rng.sample(behaviours, need)
        messages = [apply_template(template.text, b.text) for b in picked]
        result.append(SafetyUser(
            id=f"jailbreak-{index:02d}", kind="jailbreak", template=template.source, examples=messages[:shots],
            requests=messages[shots:], behaviours=[b.text for b in picked[shots:]],
        ))
    return result


def benign_users(prompts: list[SafetyPrompt], *, shots: int, requests: int, seed: int) -> list[SafetyUser]:
    """One user per voice (the `group` of each prompt); voices without enough prompts are left out."""
    by_voice: dict[str, list[SafetyPrompt]] = {}
    for prompt in prompts:
        by_voice.setdefault(prompt.group or "default", []).append(prompt)
    rng = random.Random(seed)
    result = []
    for voice in sorted(by_voice):
        pool = by_voice[voice]
        if len(pool) < shots + requests:
            continue
        picked = rng.sample(pool, shots + requests)
        result.append(SafetyUser(
            id=f"benign-{voice}", kind="benign", examples=[p.text for p in picked[:shots]],
            requests=[p.text for p in picked[shots:]], behaviours=[p.text for p in picked[shots:]],
        ))
    if not result:
        raise InputError(f"no benign voice has {shots + requests} requests (shots + requests)")
    return result
