"""The core commands: demo, infer, generate, show, settings."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel, ConfigDict, StrictInt, field_validator, model_validator
from rich.markdown import Markdown

from ..api import HyperAlign
from ..batch.run import finished_keys
from ..errors import InputError
from ..io import (
    JsonlLog,
    check_name,
    check_output_path,
    check_text,
    iter_jsonl,
    validate_row,
)
from ..pipeline.generate import PROFILE_ONLY_SETTINGS, Generation, GenerationOptions, Strategy, unused_settings
from ..pipeline.infer import InferenceOptions
from ..pipeline.reference import ReferenceStats
from ..pipeline.selection import SelectionOptions
from ..pipeline.steer import SteerLevel
from ..profiles.model import Profile, UserExample, examples_hash, read_examples
from .common import (
    app,
    cli_command,
    client,
    echo,
    echo_json,
    err,
    out,
    progress_bars,
    report_usage,
    say,
    say_warning,
    settings,
    terminal_safe,
)

DEMO_TASK = "Write an email to the volunteers asking them to bring spare seeds to the spring seed swap."


def warn_truncation(profile: Profile) -> None:
    for index in profile.report.truncated_examples:
        say_warning(f"example {index + 1} was longer than the model's context and was truncated.")


def parse_attributes(pairs: list[str]) -> dict[str, str]:
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--attribute expects KEY=VALUE, got {pair!r}")
        # The profile's own limits, checked before any LLM call rather than when the profile is built.
        attributes[check_name(key.strip(), "--attribute key", max_length=80)] = check_text(value.strip(), "--attribute")
    return attributes


def reference_stats(path: Path) -> ReferenceStats:
    """A reference corpus's aggregates (its texts are read here and kept nowhere)."""
    from ..eval.corpus import load_corpus

    documents = load_corpus(path)
    if not documents:
        raise InputError(f"--reference {path}: holds no texts")
    return ReferenceStats.of(path.name, [d.text for d in documents])


def infer_with_status(ha: HyperAlign, user: str, examples: list[UserExample], attributes: dict[str, str],
                      options: InferenceOptions) -> Profile:
    with err.status(terminal_safe(f"Inferring hypotheses about {user} from {len(examples)} examples with "
                                  f"{ha.client.model}…")):
        profile = ha.infer_profile(user, examples, attributes=attributes, options=options)
    warn_truncation(profile)
    return profile


# The options' own defaults: a flag left at them was not given, one moved from them was (see the checks in infer).
_INFERENCE, _SELECTION = InferenceOptions(), SelectionOptions()
_PER_ASPECT: int = SelectionOptions.model_fields["per_aspect"].default  # a number; the model also takes None


def as_flags(settings: list[str]) -> list[str]:
    return ["--" + name.replace("_", "-") for name in settings]


def ignored_flags(flags: list[str], used_by: str, why: str = "", instead: str = "") -> InputError:
    """The error for flags the command would not apply: named, with who uses them and what to do instead."""
    them = "them" if len(flags) > 1 else "it"
    return InputError(f"{', '.join(flags)}: only {used_by} uses {them}{why}; {instead}leave {them} out")


@cli_command
def infer(
    examples_file: Annotated[Path, typer.Argument(metavar="EXAMPLES.jsonl", help='Lines {"prompt"?: str, "text": str}.')],
    user: Annotated[str, typer.Option("--user", help="The user's id.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the profile JSON here.")] = None,
    attribute: Annotated[list[str], typer.Option(help="Known attribute KEY=VALUE (wins over inferred).")] = [],
    max_per_aspect: Annotated[int, typer.Option(min=1, max=5)] = 4,
    keep_unsupported: Annotated[bool, typer.Option("--keep-unsupported/", help="Keep hypotheses without a verified quote, flagged.")] = False,
    select_: Annotated[bool, typer.Option("--select/", help="Score hypotheses on held-out examples; keep the best.")] = False,
    held_out: Annotated[int, typer.Option(min=1, help="With --select: examples held out for scoring.")] = _SELECTION.held_out,
    per_aspect: Annotated[int, typer.Option(min=1, help="With --select: hypotheses kept per aspect.")] = _PER_ASPECT,
    refine: Annotated[int, typer.Option(min=0, max=10, help="With --select: refinement rounds.")] = _SELECTION.refine_rounds,
    budget: Annotated[Optional[int], typer.Option(min=1, help="Keep at most N hypotheses.")] = None,
    proposal: Annotated[Optional[str], typer.Option(help="single: one call for every aspect; per-aspect: the paper's call per aspect (default: per-aspect on the embedded backend, single elsewhere).")] = None,
    reask: Annotated[bool, typer.Option("--reask/--no-reask", help="Ask once more for quotes that were not found.")] = True,
    facts: Annotated[bool, typer.Option("--facts/--no-facts", help="Add the measured style facts.")] = True,
    min_hypotheses: Annotated[int, typer.Option(min=0, help="Warn (or fail with --strict) below this many supported hypotheses.")] = 3,
    strict: Annotated[bool, typer.Option("--strict/", help="Fail instead of warning when too few hypotheses survive.")] = False,
    method: Annotated[Optional[str], typer.Option(help="contrastive: how the person differs from the model's default voice, verified by telling them apart (default); paper: HyPerAlign's one pass (the default with --select or --budget).")] = None,
    reference: Annotated[Optional[Path], typer.Option(metavar="CORPUS", help="A corpus of the genre (one folder per author, or JSONL {author, text}): its aggregate statistics join the contrast; no text of it is used.")] = None,
    genre_task: Annotated[Optional[str], typer.Option(help="The task the default voice answers for examples without a prompt (default: one built from each text's opening).")] = None,
    min_fact_z: Annotated[float, typer.Option(min=0.0, max=10.0, help="Keep measured facts this many pooled spreads from the contrast.")] = _INFERENCE.min_fact_z,
    voice_samples: Annotated[int, typer.Option(min=0, max=24, help="Keep the N sentences of the texts that carry the person's habits most against the default voice; generation shows them (0: none).")] = _INFERENCE.voice_samples,
    measured_hypotheses: Annotated[int, typer.Option(min=0, max=12, help="State the N most distinctive measured facts as hypotheses too, each checked by its measurement (0: none).")] = _INFERENCE.measured_hypotheses,
) -> None:
    """Infer an evidence-checked profile from a user's texts: by default how they differ from the model's own
    writing (contrastive); --method paper for the paper's one pass (optionally scored and selected)."""
    # Every input is checked before the first LLM call: a bad id or output path must not cost the inference.
    check_name(user, "--user")
    attributes = parse_attributes(attribute)
    if output is not None:
        check_output_path(output, examples_file)
    examples = read_examples(examples_file)
    ha = client()
    selection = None
    if select_ or budget:
        selection = SelectionOptions(score=select_, held_out=held_out, per_aspect=per_aspect if select_ else None,
                                     refine_rounds=refine, max_hypotheses=budget)
    if proposal not in (None, "single", "per-aspect"):
        raise InputError(f"--proposal must be single or per-aspect, got {proposal!r}")
    chosen = method or ("paper" if selection is not None else "contrastive")
    if chosen not in ("contrastive", "paper"):
        raise InputError(f"--method must be contrastive or paper, got {method!r}")
    if chosen == "contrastive" and selection is not None:
        raise InputError("--select and --budget belong to --method paper; the contrastive method verifies "
                         "hypotheses by telling the person from the default voice")
    if genre_task is not None and not genre_task.strip():
        raise InputError("--genre-task is empty: give the task, or leave the option out")
    # Settings the chosen method would ignore: refused by name rather than silently not applied.
    contrastive_only = {"--reference": reference is not None, "--genre-task": genre_task is not None,
                        "--min-fact-z": min_fact_z != _INFERENCE.min_fact_z,
                        "--voice-samples": voice_samples != _INFERENCE.voice_samples,
                        "--measured-hypotheses": measured_hypotheses != _INFERENCE.measured_hypotheses}
    if chosen == "paper" and (unused := [flag for flag, given in contrastive_only.items() if given]):
        raise ignored_flags(unused, "the contrastive method", why=" (the paper method has no default voice to contrast "
                            "with)")
    if not facts and measured_hypotheses != _INFERENCE.measured_hypotheses:
        raise InputError("--measured-hypotheses states measured facts as hypotheses, and --no-facts measures none: "
                         "leave one of them out")
    select_only = {"--held-out": held_out != _SELECTION.held_out, "--per-aspect": per_aspect != _PER_ASPECT,
                   "--refine": refine != _SELECTION.refine_rounds}
    if not select_ and (unused := [flag for flag, given in select_only.items() if given]):
        raise ignored_flags(unused, "--select", instead="add --select or ")
    options = InferenceOptions(method=chosen, max_per_aspect=max_per_aspect,
                               keep_unsupported=keep_unsupported, selection=selection,
                               proposal=proposal, reask=reask, style_facts=facts,
                               min_hypotheses=min_hypotheses, strict=strict, genre_task=genre_task,
                               min_fact_z=min_fact_z, voice_samples=voice_samples,
                               measured_hypotheses=measured_hypotheses, reference=reference_stats(reference) if reference else None)
    profile = infer_with_status(ha, user, examples, attributes, options)
    if output:
        profile.save(output)
        r = profile.report
        verified = ""
        if r.verification:
            verified = (f", {r.verification.get('failed', 0):.0f} dropped as not telling {user} from the default "
                        "voice")
        say(f"Wrote {output}: {len(profile.inferred_hypotheses)} supported hypotheses of {r.proposed} proposed "
            f"({r.dropped_unsupported} dropped without a verbatim quote{verified}) and {len(profile.facts)} "
            "measured style facts.", style="")
    else:
        echo_json(profile.to_json())
    report_usage(ha)


class TaskRow(BaseModel):
    """A line of a --tasks file: {"id"?: string or whole number, "task" (or "prompt"): string}."""

    model_config = ConfigDict(extra="forbid")
    id: str | StrictInt | None = None
    task: str | None = None
    prompt: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _plain_id(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError("must be a string or a whole number")
        return value

    @model_validator(mode="after")
    def _one_task(self) -> TaskRow:
        given = [v for v in (self.task, self.prompt) if v is not None]
        if len(given) != 1 or not given[0].strip():
            raise ValueError('give one non-empty "task" (or "prompt") string')
        return self


def read_tasks(path: Path) -> list[tuple[str, str]]:
    tasks, seen = [], set()
    for number, value in iter_jsonl(path):
        row = validate_row(TaskRow, value, f"{path}, line {number}")
        task_id = str(row.id) if row.id is not None else str(number)
        check_name(task_id, f"{path}, line {number}: the id")
        if task_id in seen:
            raise InputError(f"{path}, line {number}: duplicate id {task_id!r}")
        seen.add(task_id)
        tasks.append((task_id, row.task if row.task is not None else row.prompt or ""))
    if not tasks:
        raise InputError(f"{path}: holds no tasks")
    return tasks


class Rerank(StrEnum):
    AUTO = "auto"
    WORD_MARGIN = "word-margin"
    MARGIN = "margin"
    ADHERENCE = "adherence"


class OpeningChoice(StrEnum):
    CODE = "code"
    PREFILL = "prefill"


def generation_identity(ha: HyperAlign, strategy: Strategy, profile: Profile | None,
                        examples: list[UserExample] | None, options: GenerationOptions) -> str:
    """What the outputs in one -o file were made with. A resumed run must match it: outputs of another profile,
    model or strategy are never passed off as this run's."""
    parts = [strategy.value, ha.client.backend.name, ha.client.model, str(options.max_tokens), str(options.best_of),
             options.steer.value, options.opening, str(options.example_texts), str(options.max_copied), options.rerank,
             profile.model_dump_json(exclude={"created_at"}) if profile else "", examples_hash(examples) if examples else ""]
    parts += ["revise"] if options.revise else []  # added on: identities of runs made before it stay the same
    parts += [f"excerpts={options.excerpts}"] if options.excerpts is not None else []
    parts += [f"steer_words={options.steer_words.value}"] if options.steer_words is not SteerLevel.OFF else []
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@cli_command
def generate(
    task: Annotated[Optional[str], typer.Argument(help="The task, e.g. 'Write an article that starts with: …'.")] = None,
    profile_file: Annotated[Optional[Path], typer.Option("--profile", help="Profile JSON from `infer`.")] = None,
    strategy: Annotated[Strategy, typer.Option(help="hyperalign uses the profile; the others are baselines.")] = Strategy.HYPERALIGN,
    examples_file: Annotated[Optional[Path], typer.Option("--examples", help="The user's examples (few-shot).")] = None,
    tasks_file: Annotated[Optional[Path], typer.Option("--tasks", help='JSONL {"id"?, "task"} for many tasks.')] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="JSONL output (with --tasks); resumes.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, max=100_000)] = 600,
    best_of: Annotated[int, typer.Option(min=1, max=64, help="Sample N and return the one most adherent to the person.")] = 1,
    rerank: Annotated[Rerank, typer.Option(help="With --best-of: by the margin over the default voice in common-word use (word-margin) or on the distinctive facts (margin), by adherence, or auto (the first the profile can give).")] = Rerank.AUTO,
    check_hypotheses: Annotated[bool, typer.Option("--check-hypotheses/", help="With --best-of: also check the hypotheses on each candidate (one LLM call each).")] = False,
    steer: Annotated[SteerLevel, typer.Option(help="Apply the profile's habits while writing: opening, sign-off, token biases (hyperalign only).")] = GenerationOptions().steer,
    steer_words: Annotated[SteerLevel, typer.Option(help="Token biases toward the person's rates of common words against the default voice (hyperalign only; needs a schema-9 profile).")] = GenerationOptions().steer_words,
    opening: Annotated[OpeningChoice, typer.Option(help="The person's habitual opening: put in front by code, or prefilled where the backend continues a given start.")] = OpeningChoice.CODE,
    example_texts: Annotated[int, typer.Option(min=0, max=8, help="With the profile: also show the K texts of --examples most similar to the task (BM25).")] = 0,
    excerpts: Annotated[Optional[int], typer.Option(min=0, max=24, help="With the profile: show the N sentences of --examples that carry the person's habits most against the default voice, instead of the profile's own voice samples (0: none).")] = None,
    max_copied: Annotated[float, typer.Option(min=0.0, max=1.0, help="With the profile: a text repeating more of the prompt's own words of the person (share of word 8-grams) is written again; 1 turns this off.")] = GenerationOptions().max_copied,
    revise: Annotated[bool, typer.Option("--revise/", help="With the profile: one more call revises the text towards the measured facts it misses; kept only where it measures closer.")] = False,
) -> None:
    """Write text as the user would (or as a baseline would)."""
    if (task is None) == (tasks_file is None):
        raise InputError("give either one TASK or --tasks FILE.jsonl")
    if task is not None:
        check_text(task, "the task")
        if not task.strip():
            raise InputError("the task is empty")
    if tasks_file and not output:
        raise InputError("--tasks needs -o OUT.jsonl, where results are written as they finish")
    if output is not None:
        check_output_path(output, tasks_file, profile_file, examples_file)
    profile = Profile.load(profile_file) if profile_file else None
    examples = read_examples(examples_file) if examples_file else None
    if strategy is Strategy.HYPERALIGN and profile is None:
        raise InputError("--strategy hyperalign needs --profile PROFILE.json")
    if strategy is Strategy.FEW_SHOT and examples is None:
        raise InputError("--strategy few-shot needs --examples EXAMPLES.jsonl")
    if profile is not None and strategy is not Strategy.HYPERALIGN:
        raise InputError(f"--profile is not used by --strategy {strategy.value} (it writes from "
                         f"{'the examples' if strategy is Strategy.FEW_SHOT else 'the task'} alone)")
    if examples is not None and strategy is Strategy.ZERO_SHOT:
        raise InputError("--examples is not used by --strategy zero-shot (it writes from the task alone)")
    if example_texts and examples is None:
        raise InputError("--example-texts needs --examples EXAMPLES.jsonl (the texts to choose from)")
    if excerpts and examples is None and not (profile and profile.voice_samples):
        raise InputError("--excerpts needs --examples EXAMPLES.jsonl (the texts to choose from): this profile keeps "
                         "no voice samples")
    if profile and examples and examples_hash(examples) != profile.examples_hash:
        say_warning("these examples are not the ones the profile was inferred from.")
    todo_all = read_tasks(tasks_file) if tasks_file else []
    ha = client()
    options = GenerationOptions(max_tokens=max_tokens, best_of=best_of, check_hypotheses=check_hypotheses, steer=steer,
                                steer_words=steer_words,
                                rerank=rerank.value,
                                opening=opening.value, example_texts=example_texts, excerpts=excerpts,
                                max_copied=max_copied, revise=revise)
    if unused := unused_settings(strategy, options):
        if profile_only := [name for name in unused if name in PROFILE_ONLY_SETTINGS]:
            raise ignored_flags(as_flags(profile_only), "the hyperalign strategy", why=f", not --strategy {strategy.value}")
        raise ignored_flags(as_flags(unused), "best-of-N", instead="add --best-of N (N >= 2) or ")
    if task is not None:
        generation = ha.generate(profile, task, strategy, examples, options=options)
        echo(generation.text)
        if generation.levers:
            say(f"Steering ({generation.steer.value}): " + " · ".join(str(lever) for lever in generation.levers))
        if generation.rewrites:
            last = "; the kept one without the shown texts" if generation.without_shown_texts else ""
            say(f"Written {generation.rewrites + 1} times: the first copied the person's words from the prompt "
                f"(kept: {generation.copy_rate:.0%} of its word 8-grams copied{last}).")
        if generation.revision is not None:
            revision = generation.revision
            say(f"Revision {'kept' if revision.kept else 'not kept'}: {revision.reason}"
                + (f" ({revision.scored_by} {revision.draft_score} -> {revision.revised_score})"
                   if revision.deviations else "") + ".")
        if generation.adherence is not None:
            say(f"Best of {best_of} by {generation.reranked_by}: adherence {generation.adherence:.2f} (candidates: "
                f"{', '.join(f'{s:.2f}' for s in generation.candidate_scores)}; {generation.usage.calls} LLM calls).")
        report_usage(ha)
        return
    assert output is not None
    log = JsonlLog(output)
    identity = generation_identity(ha, strategy, profile, examples, options)
    done = finished_keys(log, identity)
    todo = [(i, t) for i, t in todo_all if i not in done]
    if done:
        say(f"Resuming: {len(todo_all) - len(todo)} of {len(todo_all)} tasks already in {output}.", style="")
    with progress_bars() as progress:
        bar = progress.add_task(strategy.value, total=len(todo))

        def save(index: int, generation: Generation) -> None:
            row = {"id": todo[index][0], "run": identity, **generation.model_dump(mode="json"),
                   "output": generation.text}
            row.pop("text")
            log.append(row)
            progress.advance(bar)

        ha.generate_many(profile, [t for _, t in todo], strategy, examples, on_done=save, options=options)
    say(f"Wrote {len(todo)} outputs to {output}.", style="")
    report_usage(ha)


def print_markdown(text: str, plain: bool) -> None:
    text = terminal_safe(text)
    if plain or not out.is_terminal:
        echo(text.rstrip("\n"))
    else:
        out.print(Markdown(text))


@cli_command
def show(
    profile_file: Annotated[Path, typer.Argument(metavar="PROFILE.json")],
    plain: Annotated[bool, typer.Option("--plain/", help="Print raw Markdown even on a terminal.")] = False,
) -> None:
    """Show a profile as Markdown."""
    print_markdown(Profile.load(profile_file).to_markdown(), plain)


def show_settings() -> None:
    """List every setting, its value (never the API key) and where it came from."""
    rows = settings().describe()
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        echo(f"{name:<{width}}  {value}  ({source})")


cli_command(show_settings, name="settings")
__all__ = ["app"]
