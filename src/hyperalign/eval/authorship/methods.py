"""The methods an evaluation compares: the generation strategies, hyperalign variants (hypothesis selection,
budgets, refinement) and outputs imported from any other system."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import InputError
from ...io import iter_jsonl
from ...pipeline.evidence import normalize
from ...pipeline.generate import Strategy
from ...pipeline.infer import InferenceOptions
from ...pipeline.selection import SelectionOptions
from ..corpus import Split


@dataclass
class Method:
    name: str
    strategy: Strategy | None = None
    import_path: Path | None = None
    inference: InferenceOptions | None = None  # hyperalign variants: how their profiles are inferred

    @property
    def folder(self) -> str:
        """Where this method's profiles live under profiles/ (plain hyperalign at the top)."""
        return "" if self.name == "hyperalign" else re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.name) + "/"


def _variant(entry: str) -> InferenceOptions:
    """hyperalign[:select][:refine=R][:budget=N][:per-aspect=N][:held-out=H] -> inference options."""
    parts = entry.split(":")[1:]
    settings: dict[str, int] = {}
    select_on = False
    for part in parts:
        key, sep, value = part.partition("=")
        if key == "select" and not sep:
            select_on = True
        elif key in {"refine", "budget", "per-aspect", "held-out"} and sep and value.isdigit():
            settings[key] = int(value)
        else:
            raise InputError(f"method {entry!r}: unknown variant option {part!r} "
                             "(select, refine=R, budget=N, per-aspect=N, held-out=H)")
    if not select_on and {"refine", "held-out"} & set(settings):
        raise InputError(f"method {entry!r}: refine and held-out need 'select'")
    selection = SelectionOptions(
        held_out=settings.get("held-out", 2),
        per_aspect=settings.get("per-aspect", 3 if select_on else None),
        max_hypotheses=settings.get("budget"),
        refine_rounds=settings.get("refine", 0),
        score=select_on,
    )
    return InferenceOptions(selection=selection)


def parse_methods(spec: list[str]) -> list[Method]:
    methods: list[Method] = []
    for entry in spec:
        entry = entry.strip()
        if entry.startswith("import:"):
            path = Path(entry.removeprefix("import:"))
            if not path.is_file():
                raise InputError(f"method {entry!r}: no such file {path}")
            methods.append(Method(name=f"import:{path.stem}", import_path=path))
        elif entry in {s.value for s in Strategy}:
            methods.append(Method(name=entry, strategy=Strategy(entry)))
        elif entry.startswith("hyperalign:"):
            methods.append(Method(name=entry, strategy=Strategy.HYPERALIGN, inference=_variant(entry)))
        else:
            known = ", ".join(s.value for s in Strategy)
            raise InputError(f"unknown method {entry!r}; use {known}, hyperalign:select[:refine=R][:budget=N], "
                             "or import:FILE.jsonl")
    names = [m.name for m in methods]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"methods must be distinct and non-empty, got {names}")
    return methods


def imported_outputs(method: Method, split: Split) -> list[dict[str, Any]]:
    assert method.import_path
    available: dict[tuple[str, str], str] = {}
    for number, row in iter_jsonl(method.import_path):
        if not all(isinstance(row.get(k), str) for k in ("author", "prompt", "output")):
            raise InputError(f'{method.import_path}, line {number}: needs string fields "author", "prompt", "output"')
        available[(row["author"], normalize(row["prompt"]))] = row["output"]
    rows, missing = [], []
    for author in split.authors:
        for item in author.held_out:
            output = available.get((item.author, normalize(item.prompt)))
            if output is None:
                missing.append(item)
                continue
            rows.append({"key": f"{method.name}|{item.id}", "method": method.name, "item_id": item.id,
                         "author": item.author, "output": output, "prompt_tokens": None, "completion_tokens": None})
    if missing:
        example = missing[0]
        raise InputError(
            f"{method.import_path} lacks {len(missing)} of the run's {len(rows) + len(missing)} prompts, e.g. "
            f"author {example.author!r}: {example.prompt[:100]!r}"
        )
    return rows
