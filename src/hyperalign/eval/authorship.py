"""Authorship evaluation: each method writes the held-out tasks of each author; we measure how much the outputs
read like that author — judge-free (stylometric attribution), by a pairwise LLM judge, and what it cost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from ..api import HyperAlign
from ..errors import InputError, StructuredOutputError
from ..evidence import normalize
from ..examples import iter_jsonl
from ..generate import Strategy
from ..profile import Profile
from .corpus import PromptStyle, Split, load_corpus, make_split
from .judge import Judge, aggregate, pair_orders
from .metrics import attribution_metrics, cost_metrics
from .runs import ProgressHook, RunFolder, no_progress

GENERATIONS = "generations.jsonl"
JUDGMENTS = "judgments.jsonl"


class AuthorshipConfig(BaseModel):
    corpus: str
    methods: list[str]
    authors: int = 10
    shots: int = 7
    prompts_per_author: int = 3
    seed: int = 0
    prompt_style: PromptStyle = "auto"
    classifier_texts: Literal["all", "shots"] = "all"
    judge: str | None = "style"
    max_tokens: int = 600
    copy_threshold: float = Field(0.05, description="outputs whose word 8-gram copy rate reaches this are 'copying'")
    backend: str = ""
    model: str = ""
    judge_backend: str = ""
    judge_model: str = ""

    # Changing any of these would change finished work, so a rerun into the same folder must keep them.
    IDENTITY: ClassVar[tuple[str, ...]] = ("corpus", "authors", "shots", "prompts_per_author", "seed", "prompt_style", "max_tokens", "backend", "model")


class Method(BaseModel):
    name: str
    strategy: Strategy | None = None
    import_path: Path | None = None


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
        else:
            known = ", ".join(s.value for s in Strategy)
            raise InputError(f"unknown method {entry!r}; use {known}, or import:FILE.jsonl")
    names = [m.name for m in methods]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"methods must be distinct and non-empty, got {names}")
    return methods


def _imported_outputs(method: Method, split: Split) -> list[dict[str, Any]]:
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


class AuthorshipRun:
    def __init__(self, config: AuthorshipConfig, ha: HyperAlign, judge_ha: HyperAlign | None, folder: RunFolder,
                 progress: ProgressHook = no_progress):
        self.config, self.ha, self.judge_ha, self.folder, self.progress = config, ha, judge_ha, folder, progress
        self.methods = parse_methods(config.methods)
        self.judge = Judge.load(config.judge) if config.judge else None

    def prepare_split(self) -> Split:
        if self.folder.file("split.json").exists():
            return Split.model_validate(self.folder.read_json("split.json"))
        c = self.config
        split = make_split(load_corpus(Path(c.corpus)), authors=c.authors, shots=c.shots,
                           prompts_per_author=c.prompts_per_author, seed=c.seed, prompt_style=c.prompt_style,
                           classifier_texts=c.classifier_texts)
        self.folder.write_json("split.json", split.model_dump(mode="json"))
        return split

    async def profiles(self, split: Split) -> dict[str, Profile]:
        profiles: dict[str, Profile] = {}
        if not any(m.strategy is Strategy.HYPERALIGN for m in self.methods):
            return profiles
        advance = self.progress("infer profiles", len(split.authors))
        for author in split.authors:  # one at a time: each inference is already parallel inside
            path = self.folder.file(f"profiles/{author.author}.json")
            if path.exists():
                profiles[author.author] = Profile.load(path)
            else:
                profile = await self.ha.ainfer_profile(author.author, author.demonstrations)
                profile.save(path)
                profiles[author.author] = profile
            advance()
        return profiles

    async def generations(self, split: Split, profiles: dict[str, Profile]) -> list[dict[str, Any]]:
        done = self.folder.done_keys(GENERATIONS)
        for method in self.methods:
            if method.import_path:
                for row in _imported_outputs(method, split):
                    if row["key"] not in done:
                        self.folder.append(GENERATIONS, row)
        jobs = [(m, a, i) for m in self.methods if m.strategy for a in split.authors for i in a.held_out
                if f"{m.name}|{i.id}" not in done]
        advance = self.progress("generate", len(jobs))

        async def one(method: Method, author: Any, item: Any) -> None:
            generation = await self.ha.agenerate(profiles.get(author.author), item.prompt, method.strategy,
                                                 author.demonstrations)
            self.folder.append(GENERATIONS, {
                "key": f"{method.name}|{item.id}", "method": method.name, "item_id": item.id, "author": item.author,
                "output": generation.text, "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens, "finish_reason": generation.finish_reason,
                "model": generation.model,
            })
            advance()

        await asyncio.gather(*(one(*job) for job in jobs))
        return self.folder.records(GENERATIONS)

    async def judgments(self, split: Split, outputs: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
        if not self.judge or not self.judge_ha or len(self.methods) < 2:
            return []
        judge, client = self.judge, self.judge_ha.client
        done = self.folder.done_keys(JUDGMENTS)
        names = [m.name for m in self.methods]
        jobs = [(a, b, order, item) for author in split.authors for item in author.held_out
                for a, b, order in pair_orders(names) if f"{a}|{b}|{item.id}" not in done]
        advance = self.progress("judge pairs", len(jobs))

        async def one(a: str, b: str, order: int, item: Any) -> None:
            row = {"key": f"{a}|{b}|{item.id}", "a": a, "b": b, "order": order, "item_id": item.id,
                   "judge": judge.version}
            try:
                verdict, completions = await judge.compare(
                    client, [item.reference], outputs[(a, item.id)], outputs[(b, item.id)]
                )
                row |= {"winner": a if verdict.closer == "A" else b, "reason": verdict.reason,
                        "prompt_tokens": sum(c.usage.prompt_tokens for c in completions)}
            except StructuredOutputError as exc:
                # Recorded, not fatal: an unusable verdict leaves that pair out and is counted in the report.
                row |= {"winner": None, "error": str(exc)}
            self.folder.append(JUDGMENTS, row)
            advance()

        await asyncio.gather(*(one(*job) for job in jobs))
        return self.folder.records(JUDGMENTS)

    async def run(self) -> dict[str, Any]:
        self.folder.bind_config(self.config, AuthorshipConfig.IDENTITY)
        split = self.prepare_split()
        profiles = await self.profiles(split)
        rows = await self.generations(split, profiles)
        outputs = {(r["method"], r["item_id"]): r["output"] for r in rows}
        judgments = await self.judgments(split, outputs)
        names = [m.name for m in self.methods]
        results = {
            "config": self.config.model_dump(mode="json"),
            "methods": names,
            "authors": [a.author for a in split.authors],
            "skipped_authors": split.skipped,
            "n_prompts": sum(len(a.held_out) for a in split.authors),
            "attribution": attribution_metrics(split, rows, names, self.config),
            "judge": {**aggregate(judgments, names), "judge": self.judge.version if self.judge else None},
            "cost": cost_metrics(split, rows, profiles, names),
        }
        self.folder.write_json("results.json", results)
        return results
