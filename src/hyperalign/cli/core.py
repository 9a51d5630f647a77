"""The core commands: demo, infer, generate, show."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markdown import Markdown
from rich.table import Table

from ..api import HyperAlign
from ..errors import InputError
from ..io import iter_jsonl
from ..pipeline.generate import Generation, Strategy
from ..pipeline.infer import InferenceOptions
from ..pipeline.selection import SelectionOptions
from ..profiles.model import Profile, examples_hash, read_examples
from .common import cli_command, client, err, out, progress_bars, report_usage

DEMO_TASK = "Write an email to the volunteers asking them to bring spare seeds to the spring seed swap."


def _warn_truncation(profile: Profile) -> None:
    for index in profile.report.truncated_examples:
        err.print(f"[yellow]Warning:[/] example {index + 1} was longer than the model's context and was truncated.")


def _parse_attributes(pairs: list[str]) -> dict[str, str]:
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--attribute expects KEY=VALUE, got {pair!r}")
        attributes[key.strip()] = value.strip()
    return attributes


def _infer(ha: HyperAlign, user: str, examples: list, attributes: dict[str, str], options: InferenceOptions) -> Profile:
    with err.status(f"Inferring hypotheses about {user} from {len(examples)} examples with {ha.client.model}…"):
        profile = ha.infer_profile(user, examples, attributes=attributes, options=options)
    _warn_truncation(profile)
    return profile


@cli_command
def infer(
    examples_file: Annotated[Path, typer.Argument(metavar="EXAMPLES.jsonl", help='Lines {"prompt"?: str, "text": str}.')],
    user: Annotated[str, typer.Option("--user", help="The user's id.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the profile JSON here.")] = None,
    attribute: Annotated[list[str], typer.Option(help="Known attribute KEY=VALUE (wins over inferred).")] = [],
    max_per_aspect: Annotated[int, typer.Option(min=1, max=5)] = 4,
    keep_unsupported: Annotated[bool, typer.Option("--keep-unsupported/", help="Keep hypotheses without a verified quote, flagged.")] = False,
    select_: Annotated[bool, typer.Option("--select/", help="Score hypotheses on held-out examples; keep the best.")] = False,
    held_out: Annotated[int, typer.Option(min=1, help="With --select: examples held out for scoring.")] = 2,
    per_aspect: Annotated[int, typer.Option(min=1, help="With --select: hypotheses kept per aspect.")] = 3,
    refine: Annotated[int, typer.Option(min=0, help="With --select: refinement rounds.")] = 0,
    budget: Annotated[Optional[int], typer.Option(min=1, help="Keep at most N hypotheses.")] = None,
) -> None:
    """Infer an evidence-checked profile from a user's texts (one pass, as the paper; or scored and selected)."""
    examples = read_examples(examples_file)
    ha = client()
    selection = None
    if select_ or budget:
        selection = SelectionOptions(score=select_, held_out=held_out, per_aspect=per_aspect if select_ else None,
                                     refine_rounds=refine, max_hypotheses=budget)
    options = InferenceOptions(max_per_aspect=max_per_aspect, keep_unsupported=keep_unsupported, selection=selection)
    profile = _infer(ha, user, examples, _parse_attributes(attribute), options)
    if output:
        profile.save(output)
        r = profile.report
        err.print(
            f"Wrote {output}: {len(profile.supported_hypotheses)} supported hypotheses of {r.proposed} proposed "
            f"({r.dropped_unsupported} dropped without a verbatim quote)."
        )
    else:
        out.print_json(profile.to_json())
    report_usage(ha)


def _read_tasks(path: Path) -> list[tuple[str, str]]:
    tasks, seen = [], set()
    for number, row in iter_jsonl(path):
        task = row.get("task", row.get("prompt"))
        if not isinstance(task, str) or not task.strip():
            raise InputError(f'{path}, line {number}: expected a non-empty "task" (or "prompt") string')
        task_id = str(row.get("id", number))
        if task_id in seen:
            raise InputError(f"{path}, line {number}: duplicate id {task_id!r}")
        seen.add(task_id)
        tasks.append((task_id, task))
    return tasks


def _finished_ids(path: Path, strategy: Strategy) -> set[str]:
    if not path.exists():
        return set()
    return {str(row["id"]) for _, row in iter_jsonl(path) if row.get("strategy") == strategy.value and "id" in row}


@cli_command
def generate(
    task: Annotated[Optional[str], typer.Argument(help="The task, e.g. 'Write an article that starts with: …'.")] = None,
    profile_file: Annotated[Optional[Path], typer.Option("--profile", help="Profile JSON from `infer`.")] = None,
    strategy: Annotated[Strategy, typer.Option(help="hyperalign uses the profile; the others are baselines.")] = Strategy.HYPERALIGN,
    examples_file: Annotated[Optional[Path], typer.Option("--examples", help="The user's examples (few-shot).")] = None,
    tasks_file: Annotated[Optional[Path], typer.Option("--tasks", help='JSONL {"id"?, "task"} for many tasks.')] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="JSONL output (with --tasks); resumes.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 600,
) -> None:
    """Write text as the user would (or as a baseline would)."""
    if (task is None) == (tasks_file is None):
        raise InputError("give either one TASK or --tasks FILE.jsonl")
    if tasks_file and not output:
        raise InputError("--tasks needs -o OUT.jsonl, where results are written as they finish")
    profile = Profile.load(profile_file) if profile_file else None
    examples = read_examples(examples_file) if examples_file else None
    if strategy is Strategy.HYPERALIGN and profile is None:
        raise InputError("--strategy hyperalign needs --profile PROFILE.json")
    if strategy is Strategy.FEW_SHOT and examples is None:
        raise InputError("--strategy few-shot needs --examples EXAMPLES.jsonl")
    if profile and examples and examples_hash(examples) != profile.examples_hash:
        err.print("[yellow]Warning:[/] these examples are not the ones the profile was inferred from.")
    ha = client()
    ha.generation = ha.generation.model_copy(update={"max_tokens": max_tokens})
    if task is not None:
        out.print(ha.generate(profile, task, strategy, examples), highlight=False, markup=False)
        report_usage(ha)
        return
    assert tasks_file and output
    todo_all = _read_tasks(tasks_file)
    done = _finished_ids(output, strategy)
    todo = [(i, t) for i, t in todo_all if i not in done]
    if done:
        err.print(f"Resuming: {len(todo_all) - len(todo)} of {len(todo_all)} tasks already in {output}.")
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a", encoding="utf-8") as sink, progress_bars() as progress:
        bar = progress.add_task(f"{strategy.value}", total=len(todo))

        def save(index: int, generation: Generation) -> None:
            row = {"id": todo[index][0], **generation.model_dump(mode="json"), "output": generation.text}
            row.pop("text")
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            progress.advance(bar)

        ha.generate_many(profile, [t for _, t in todo], strategy, examples, on_done=save)
    err.print(f"Wrote {len(todo)} outputs to {output}.")
    report_usage(ha)


@cli_command
def show(
    profile_file: Annotated[Path, typer.Argument(metavar="PROFILE.json")],
    plain: Annotated[bool, typer.Option("--plain/", help="Print raw Markdown even on a terminal.")] = False,
) -> None:
    """Show a profile as Markdown."""
    text = Profile.load(profile_file).to_markdown()
    if plain or not out.is_terminal:
        sys.stdout.write(text)
    else:
        out.print(Markdown(text))


@cli_command
def demo(
    task: Annotated[str, typer.Option(help="The task to personalize.")] = DEMO_TASK,
    max_tokens: Annotated[int, typer.Option(min=1)] = 300,
) -> None:
    """Offline demo: infer a profile from bundled texts, then write personalized and zero-shot texts."""
    source = resources.files("hyperalign") / "data" / "demo_user.jsonl"
    with resources.as_file(source) as path:
        examples = read_examples(path)
    ha = client()
    ha.generation = ha.generation.model_copy(update={"max_tokens": max_tokens})
    err.print(f"Backend: {ha.client.backend.name} · model: {ha.client.model} · {len(examples)} example texts by 'bev'")
    profile = _infer(ha, "bev", examples, {}, InferenceOptions())
    out.print(Markdown(profile.to_markdown()))
    with err.status("Writing the personalized and the zero-shot texts…"):
        personalized = ha.generate(profile, task, Strategy.HYPERALIGN)
        zero_shot = ha.generate(None, task, Strategy.ZERO_SHOT)
    table = Table(title=f"Task: {task}", show_lines=True, expand=True)
    table.add_column("hyperalign (with the profile)", ratio=1)
    table.add_column("zero-shot (task only)", ratio=1)
    table.add_row(personalized, zero_shot)
    out.print(table)
    report_usage(ha)
