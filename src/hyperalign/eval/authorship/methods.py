"""The methods an evaluation compares: the generation strategies and their variants (hypothesis selection, budgets,
refinement, measured facts off, best-of-N reranking), the TICL baseline, and outputs imported from any other
system (e.g. DITTO)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ...errors import InputError
from ...io import iter_jsonl
from ...pipeline.evidence import normalize
from ...pipeline.generate import Strategy
from ...pipeline.infer import InferenceOptions
from ...pipeline.selection import SelectionOptions
from ...pipeline.steer import SteerLevel
from ..corpus import Split
from .ticl import TiclOptions


@dataclass
class Method:
    name: str
    strategy: Strategy | None = None
    import_path: Path | None = None
    inference: InferenceOptions | None = None  # hyperalign variants: how their profiles are inferred
    generation: dict[str, Any] = field(default_factory=dict)  # GenerationOptions overrides, e.g. best_of
    ticl: TiclOptions | None = None  # the TICL baseline: how its prompt is built

    @property
    def folder(self) -> str:
        """Where this method's profiles live under profiles/ (plain hyperalign at the top). Options that change only
        how the text is written (best-of, steer, examples) are not in it: such variants share the profiles they would
        otherwise infer again, identically."""
        base, *parts = self.name.split(":")
        name = ":".join([base, *(p for p in parts if p.partition("=")[0] not in GENERATION_ONLY)])
        return "" if name == "hyperalign" else re.sub(r"[^A-Za-z0-9_.=-]+", "_", name) + "/"


GENERATION_ONLY = ("best-of", "steer", "steer-words", "examples", "excerpts", "copy-guard", "rerank", "revise")


STEER_LEVELS = tuple(level.value for level in SteerLevel)
# base -> the options it takes (name -> True: takes a whole number, False: a flag, a tuple: one of these words)
OPTIONS: dict[str, dict[str, bool | tuple[str, ...]]] = {
    "hyperalign": {"paper": False, "select": False, "refine": True, "budget": True, "per-aspect": True,
                   "held-out": True, "best-of": True, "no-facts": False, "steer": STEER_LEVELS, "steer-words": STEER_LEVELS,
                   "examples": True,
                   "excerpts": True, "copy-guard": ("on", "off"), "rerank": ("word-margin", "margin", "adherence"), "revise": False,
                   "verify": ("pairwise", "pointwise")},
    "few-shot": {"best-of": True},
    "zero-shot": {},
    "ticl": {"epochs": True},
}
LIMITS = {"best-of": (1, 64), "epochs": (1, 10), "examples": (1, 8), "excerpts": (0, 24)}
USAGE = ("hyperalign[:paper][:select][:refine=R][:budget=N][:per-aspect=N][:held-out=H][:best-of=N][:no-facts]"
         "[:steer=off|light|strong][:steer-words=off|light|strong][:examples=K][:excerpts=N][:copy-guard=on|off][:best-of=N:rerank=word-margin|margin|adherence][:revise]"
         "[:verify=pairwise|pointwise], "
         "few-shot[:best-of=N], zero-shot, ticl[:epochs=E], import:FILE.jsonl")


def _allowed(takes: bool | tuple[str, ...], value: str, sep: str) -> bool:
    if isinstance(takes, tuple):
        return bool(sep) and value in takes
    return bool(sep) == takes and (not sep or value.isdigit())


def _spelled(key: str, takes: bool | tuple[str, ...]) -> str:
    return f"{key}={'|'.join(takes)}" if isinstance(takes, tuple) else f"{key}=N" if takes else key


def _options(entry: str) -> tuple[str, dict[str, int | bool | str]]:
    base, *parts = entry.split(":")
    if base not in OPTIONS:
        raise InputError(f"unknown method {entry!r}; use {USAGE}")
    settings: dict[str, int | bool | str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        takes = OPTIONS[base].get(key)
        if takes is None or not _allowed(takes, value, sep) or key in settings:
            allowed = ", ".join(_spelled(k, t) for k, t in OPTIONS[base].items()) or "none"
            raise InputError(f"method {entry!r}: unknown or repeated option {part!r} (for {base}: {allowed})")
        if isinstance(takes, tuple):
            settings[key] = value
            continue
        settings[key] = int(value) if sep else True
        low, high = LIMITS.get(key, (1, 1_000_000))
        if sep and not low <= int(value) <= high:
            raise InputError(f"method {entry!r}: {key} must be between {low} and {high}")
    if "rerank" in settings and "best-of" not in settings:
        raise InputError(f"method {entry!r}: rerank orders best-of's candidates; add best-of=N")
    if base == "hyperalign" and "best-of" in settings and settings.get("no-facts"):
        raise InputError(f"method {entry!r}: best-of reranks by the measured facts, which no-facts leaves out")
    if settings.get("revise") and settings.get("no-facts"):
        raise InputError(f"method {entry!r}: revise measures the text on the facts, which no-facts leaves out")
    return base, settings


def _inference(entry: str, settings: dict[str, int | bool | str]) -> InferenceOptions:
    select_on = bool(settings.get("select"))
    if not select_on and {"refine", "held-out"} & set(settings):
        raise InputError(f"method {entry!r}: refine and held-out need 'select'")
    selection = None
    if select_on or "budget" in settings:
        selection = SelectionOptions(
            held_out=int(settings.get("held-out", 2)),
            per_aspect=int(settings["per-aspect"]) if "per-aspect" in settings else (3 if select_on else None),
            max_hypotheses=int(settings["budget"]) if "budget" in settings else None,
            refine_rounds=int(settings.get("refine", 0)),
            score=select_on,
        )
    # The contrastive method is hyperalign's default; `paper` is HyPerAlign's one pass, and selection by held-out
    # support (select, budget) is that method's add-on.
    method: Literal["contrastive", "paper"] = (
        "paper" if settings.get("paper") or selection is not None else "contrastive")
    if method == "paper" and "verify" in settings:
        raise InputError(f"method {entry!r}: verify checks the contrastive method's hypotheses; the paper method "
                         "keeps them by their quotes")
    verification: Literal["pairwise", "pointwise"] = "pointwise" if settings.get("verify") == "pointwise" else "pairwise"
    return InferenceOptions(method=method, selection=selection, style_facts=not settings.get("no-facts"),
                            verification=verification)


def parse_methods(spec: list[str]) -> list[Method]:
    methods: list[Method] = []
    for entry in spec:
        entry = entry.strip()
        if entry.startswith("import:"):
            path = Path(entry.removeprefix("import:"))
            if not path.is_file():
                raise InputError(f"method {entry!r}: no such file {path}")
            methods.append(Method(name=f"import:{path.stem}", import_path=path))
            continue
        base, settings = _options(entry)
        generation: dict[str, Any] = {"best_of": settings["best-of"]} if "best-of" in settings else {}
        if "steer" in settings:
            generation["steer"] = settings["steer"]
        if "steer-words" in settings:
            generation["steer_words"] = settings["steer-words"]
        if "examples" in settings:
            generation["example_texts"] = settings["examples"]
        if "excerpts" in settings:
            generation["excerpts"] = settings["excerpts"]
        if "rerank" in settings:
            generation["rerank"] = settings["rerank"]
        if settings.get("revise"):
            generation["revise"] = True
        if settings.get("copy-guard") == "off":
            generation["max_copied"] = 1.0
        if base == "ticl":
            methods.append(Method(name=entry, ticl=TiclOptions(epochs=int(settings.get("epochs", 1)))))
        elif base == "hyperalign":
            methods.append(Method(name=entry, strategy=Strategy.HYPERALIGN, inference=_inference(entry, settings),
                                  generation=generation))
        else:
            methods.append(Method(name=entry, strategy=Strategy(base), generation=generation))
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
