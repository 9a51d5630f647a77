"""Authorship evaluation: each method writes the held-out tasks of each author; we measure how much the outputs
read like that author — judge-free (stylometric attribution), by a pairwise LLM judge, and what it cost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from ...api import HyperAlign
from ...errors import StructuredOutputError
from ...llm import CompletionRequest, track_usage, unbiased_identity
from ...pipeline.generate import GenerationOptions, Strategy, agenerate
from ...profiles.model import Profile
from ..calibration import calibrated, position_bias
from ..corpus import PromptStyle, Split, demonstration_tasks, load_corpus, make_split
from ..judge import AUTO_JUDGE, Judge, aggregate, agreement, chosen_judge, judge_identity, pair_orders, validity
from ..runs import ProgressHook, RunFolder, no_progress, short_hash
from ..split_file import SPLIT_FILE, read_split, write_split
from .identify import identification_by_hypotheses
from .methods import Method, imported_outputs, parse_methods
from .metrics import attribution_metrics, cost_metrics
from .profiles import profile_metrics
from .ticl import TiclState, abuild, final_messages

GENERATIONS = "generations.jsonl"
JUDGMENTS = "judgments.jsonl"
REAL = "real text"  # the author's held-out text, as a contestant in the judge's validity check
VALIDITY_AGAINST = "zero-shot"
VALIDITY_ONLY = "validity"  # as judge_against: judge no pair of methods, only the judge's validity check


class AuthorshipConfig(BaseModel):
    corpus: str
    methods: list[str]
    authors: int = 10
    shots: int = 7
    prompts_per_author: int = 3
    seed: int = 0
    prompt_style: PromptStyle = "auto"
    classifier_texts: Literal["all", "shots"] = "all"
    judge: str | None = Field(AUTO_JUDGE, description="a judge folder or name; 'auto': same-author where the judge "
                              "backend returns log-probabilities, else style (judge.chosen_judge); None: no judge")
    max_tokens: int = 600
    copy_threshold: float = Field(0.05, description="outputs whose word 8-gram copy rate reaches this are 'copying'")
    judge_against: str | None = Field(None, description="judge only the pairs that include this method (ablations); "
                                      "'validity': only the judge's validity check")
    backend: str = ""
    model: str = ""
    judge_backend: str = ""
    judge_model: str = ""
    generator: str = Field("", description="identity of the generating client: endpoint, model file, sampling")
    judge_id: str = Field("", description="identity of the judge: its folder's content and the judging client")

    # Changing any of these would change finished generations, so a rerun into the same folder must keep them. The
    # judge is not among them: every verdict is keyed by the judge's identity, so the same outputs can be judged
    # again by another judge (e.g. a stronger model) without generating them again, and the report counts only the
    # current judge's verdicts. Nor are the methods or judge_against: a rerun may add methods or pairs to judge.
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "corpus", "authors", "shots", "prompts_per_author", "seed", "prompt_style", "classifier_texts", "max_tokens",
        "backend", "model", "generator",
    )


class AuthorshipRun:
    def __init__(self, config: AuthorshipConfig, ha: HyperAlign, judge_ha: HyperAlign | None, folder: RunFolder,
                 progress: ProgressHook = no_progress):
        self.ha, self.judge_ha, self.folder, self.progress = ha, judge_ha, folder, progress
        self.generation = GenerationOptions(max_tokens=config.max_tokens)
        self.methods = parse_methods(config.methods)
        judging = (judge_ha or ha).client
        if config.judge:  # the report names the judge that ran, not 'auto'
            config = config.model_copy(update={"judge": chosen_judge(config.judge, judging)})
        self.judge = Judge.load(config.judge) if config.judge else None
        if self.judge:  # a template that cannot render, or a judge this backend cannot run, fails before any call
            self.judge.check(judging)
        judge_id = judge_identity(self.judge, judge_ha) if self.judge and judge_ha else ""
        generator = short_hash(unbiased_identity(ha.client.identity))
        self.config = config.model_copy(update={"generator": generator, "judge_id": judge_id})

    def prepare_split(self) -> Split:
        c = self.config
        if self.folder.file(SPLIT_FILE).exists():
            return read_split(self.folder, c.corpus)
        split = make_split(load_corpus(Path(c.corpus)), authors=c.authors, shots=c.shots,
                           prompts_per_author=c.prompts_per_author, seed=c.seed, prompt_style=c.prompt_style,
                           classifier_texts=c.classifier_texts)
        write_split(self.folder, split)
        return split

    async def profiles(self, split: Split) -> dict[str, dict[str, Profile]]:
        """method -> author -> profile, for every hyperalign method (variants infer their own)."""
        profiles: dict[str, dict[str, Profile]] = {}
        variants = [m for m in self.methods if m.strategy is Strategy.HYPERALIGN]
        advance = self.progress("infer profiles", len(split.authors) * len(variants))
        for method in variants:
            profiles[method.name] = {}
            for author in split.authors:  # one at a time: each inference is already parallel inside
                path = self.folder.file(f"profiles/{method.folder}{author.author}.json")
                if path.exists():
                    profile = Profile.load(path)
                else:
                    profile = await self.ha.ainfer_profile(author.author, author.demonstrations, options=method.inference)
                    profile.save(path)
                profiles[method.name][author.author] = profile
                advance()
        return profiles

    async def ticl_prompts(self, split: Split) -> dict[str, dict[str, TiclState]]:
        """method -> author -> TICL state, built (or resumed) for every TICL method; saved after every step."""
        states: dict[str, dict[str, TiclState]] = {}
        ticl_methods = [m for m in self.methods if m.ticl]
        advance = self.progress("build TICL prompts", len(split.authors) * len(ticl_methods))
        for method in ticl_methods:
            assert method.ticl is not None
            states[method.name] = {}
            for author in split.authors:
                name = f"profiles/{method.folder}{author.author}.ticl.json"
                demonstrations = demonstration_tasks(author, self.config.prompt_style)
                saved = self.folder.read_model(name, TiclState) if self.folder.file(name).exists() else None
                if saved is not None and [i.example for i in saved.items] != demonstrations:
                    saved = None  # built on other demonstrations or tasks (an older version): start again

                def save(state: TiclState, name: str = name) -> None:
                    self.folder.write_json(name, state.model_dump())

                state = await abuild(self.ha.client, demonstrations,
                                     method.ticl.model_copy(update={"seed": self.config.seed,
                                                                    "max_tokens": self.config.max_tokens}),
                                     saved, save=save)
                states[method.name][author.author] = state
                advance()
        return states

    async def generations(self, split: Split, profiles: dict[str, dict[str, Profile]],
                          ticl: dict[str, dict[str, TiclState]]) -> list[dict[str, Any]]:
        done = self.folder.done_keys(GENERATIONS)
        for method in self.methods:
            if method.import_path:
                for row in imported_outputs(method, split):
                    if row["key"] not in done:
                        self.folder.append(GENERATIONS, row)

        def job(method: Method, author: Any, item: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
            async def run() -> dict[str, Any]:
                row = {"method": method.name, "item_id": item.id, "author": item.author}
                if method.ticl:
                    state = ticl[method.name][author.author]
                    options = self.generation
                    completion = await self.ha.client.acomplete(CompletionRequest(
                        messages=final_messages(state, item.prompt, self.ha.client, options.max_tokens),
                        max_tokens=options.max_tokens, temperature=options.temperature, seed=options.seed))
                    return row | {"output": completion.text.strip(), "prompt_tokens": completion.usage.prompt_tokens,
                                  "cached_prompt_tokens": completion.usage.cached_prompt_tokens,
                                  "completion_tokens": completion.usage.completion_tokens,
                                  "finish_reason": completion.finish_reason, "model": completion.model,
                                  "backend_seconds": completion.seconds}
                assert method.strategy is not None  # imported methods have no generation job
                generation = await agenerate(
                    self.ha.client, item.prompt, method.strategy, profile=profiles.get(method.name, {}).get(author.author),
                    examples=author.demonstrations,
                    options=GenerationOptions.model_validate(self.generation.model_dump() | method.generation))
                return row | {"output": generation.text, "prompt_tokens": generation.usage.prompt_tokens,
                              "cached_prompt_tokens": generation.usage.cached_prompt_tokens,
                              "completion_tokens": generation.usage.completion_tokens,
                              "llm_calls": generation.usage.calls,
                              "finish_reason": generation.finish_reason, "model": generation.model,
                              "adherence": generation.adherence, "candidate_scores": generation.candidate_scores,
                              "backend_seconds": generation.usage.backend_seconds, "steer": generation.steer.value,
                              "levers": [str(lever) for lever in generation.levers],
                              "rewrites": generation.rewrites, "guard_copy_rate": generation.copy_rate,
                              "without_shown_texts": generation.without_shown_texts,
                              "revision": generation.revision.model_dump() if generation.revision
                              else None}
            return run

        jobs = {f"{m.name}|{i.id}": job(m, a, i) for m in self.methods if m.strategy or m.ticl
                for a in split.authors for i in a.held_out}
        return await self.folder.stage(GENERATIONS, "generate", jobs, self.progress)

    async def judgments(self, split: Split, outputs: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
        """Every pair of methods on every held-out task, in both orders; and, where zero-shot runs, the judge's own
        validity check: the real held-out text against zero-shot's output, with another of the author's texts as
        the reference (the held-out text cannot be its own reference)."""
        if not self.judge or not self.judge_ha or len(self.methods) < 2:
            return []
        judge, client = self.judge, self.judge_ha.client

        def job(a: str, b: str, order: int, item: Any, references: list[str], texts: tuple[str, str],
                check: str = "") -> Callable[[], Awaitable[dict[str, Any]]]:
            async def run() -> dict[str, Any]:
                row: dict[str, Any] = {"a": a, "b": b, "order": order, "item_id": item.id, "judge": judge.version,
                                       "judge_id": judge_id, **({"check": check} if check else {})}
                try:
                    with track_usage() as usage:
                        verdict = await judge.judge_pair(client, references, *texts)
                    row |= {"winner": a if verdict.pop("first") else b, **verdict,
                            "prompt_tokens": usage.prompt_tokens, "backend_seconds": usage.backend_seconds}
                except StructuredOutputError as exc:
                    # Recorded, not fatal: an unusable verdict leaves that pair out and is counted in the report.
                    row |= {"winner": None, "error": str(exc)}
                return row
            return run

        names = [m.name for m in self.methods]
        judge_id = self.config.judge_id
        jobs = {f"{judge_id}|{a}|{b}|{item.id}": job(a, b, order, item, [item.reference],
                                                      (outputs[(a, item.id)], outputs[(b, item.id)]))
                for author in split.authors for item in author.held_out for a, b, order in pair_orders(names)
                if self.config.judge_against in (None, a, b)}
        if self.config.judge_against == VALIDITY_ONLY:
            jobs = {}
        if VALIDITY_AGAINST in names:
            for author in split.authors:
                other = [author.demonstrations[0].text] if author.demonstrations else []
                for item in author.held_out:
                    real, generated = item.reference, outputs[(VALIDITY_AGAINST, item.id)]
                    for a, b, order in pair_orders([REAL, VALIDITY_AGAINST]):
                        texts = (real, generated) if a == REAL else (generated, real)
                        jobs[f"{judge_id}|validity|{a}|{b}|{item.id}"] = job(a, b, order, item, other, texts,
                                                                              check="validity")
        rows = await self.folder.stage(JUDGMENTS, "judge pairs", jobs, self.progress)
        return [row for row in rows if row.get("judge_id") == judge_id]

    def judge_results(self, judgments: list[dict[str, Any]], names: list[str],
                      margins: dict[str, dict[str, float]]) -> dict[str, Any]:
        check = validity(judgments, REAL, VALIDITY_AGAINST, seed=self.config.seed)
        main = [row for row in judgments if not row.get("check")]
        # The bias is the whole run's: validity rows are pairs judged in both orders like the others.
        bias = position_bias(judgments)
        _, calibration = calibrated(judgments)
        return {**aggregate(main, names, bias=bias), "calibration": calibration,
                "judge": self.judge.version if self.judge else None, "validity": check,
                "agreement_with_delta_margin": agreement(main, margins, bias, seed=self.config.seed)}

    async def run(self) -> dict[str, Any]:
        self.folder.bind_config(self.config, AuthorshipConfig.IDENTITY)
        split = self.prepare_split()
        profiles = await self.profiles(split)
        ticl = await self.ticl_prompts(split)
        rows = await self.generations(split, profiles, ticl)
        outputs = {(r["method"], r["item_id"]): r["output"] for r in rows}
        judgments = await self.judgments(split, outputs)
        names = [m.name for m in self.methods]
        identified = {method: await identification_by_hypotheses(self.ha.client, split, users, seed=self.config.seed)
                      for method, users in profiles.items() if users}
        by_specific = {method: await identification_by_hypotheses(self.ha.client, split, users, seed=self.config.seed,
                                                                  specific_only=True)
                       for method, users in profiles.items() if users}
        results = {
            "kind": "authorship",
            "config": self.config.model_dump(mode="json"),
            "methods": names,
            "authors": [a.author for a in split.authors],
            "skipped_authors": split.skipped,
            "n_prompts": sum(len(a.held_out) for a in split.authors),
            "attribution": (attribution := attribution_metrics(split, rows, names, self.config)),
            "judge": self.judge_results(judgments, names, attribution["second"].get("item_margins", {})),
            "cost": cost_metrics(split, rows, profiles, names, ticl),
            "profiles": profile_metrics(split, profiles, identified, self.config.seed, by_specific),
        }
        self.folder.write_json("results.json", results)
        return results
