"""`hyperalign batch infer|generate`: many users at once, resumable, on one machine or a Ray cluster."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ..batch.engines import Engine, LocalEngine, RayEngine
from ..batch.outputs import OutputLock, OutputSpot, Salvage, check_room, check_spot
from ..batch.ray_connect import DEFAULT_CONNECT_TIMEOUT_S
from ..batch.records import BadLinePolicy, RequestRecord, UserRecord, read_records
from ..batch.run import (
    BatchSummary,
    abatch_generate,
    abatch_infer,
    finished_keys,
    mark_generic_in,
    plan_generate,
    plan_infer,
    run_identity,
)
from ..batch.targets import Profiles, database_lock, open_profiles, output_spot
from ..batch.work import BatchOptions, Done
from ..config import Settings
from ..errors import InputError
from ..io import JsonlLog, check_output_path
from ..pipeline.generate import GenerationOptions, Strategy
from ..pipeline.generic import GENERIC_SHARE
from ..pipeline.reference import ReferenceStats
from .common import app, cli_command, err, say, say_warning, settings

batch_app = typer.Typer(help="Many users at once: resumable, bounded concurrency (--concurrency), local or on Ray.",
                        no_args_is_help=True)
app.add_typer(batch_app, name="batch")

EngineName = Annotated[str, typer.Option("--engine", help="local (asyncio in this process) or ray (a Ray cluster).")]
RayAddress = Annotated[Optional[str], typer.Option(help="Ray cluster to join (default: start a local Ray).")]
OnBadLine = Annotated[str, typer.Option(help="fail: stop at the first invalid line; skip: report it and go on.")]
RayConnectTimeout = Annotated[float, typer.Option(
    min=0.1, max=600, envvar="HYPERALIGN_RAY_CONNECT_TIMEOUT",
    help="Seconds to wait for the --ray-address cluster to answer before giving up.")]


def _engine(name: str, options: BatchOptions, ray_address: str | None, resolved: Settings | None = None,
            ray_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> Engine:
    resolved = resolved or settings()
    if name == "local":
        from ..api import HyperAlign

        return LocalEngine(HyperAlign.from_settings(resolved), options, resolved.concurrency)
    if name == "ray":
        if importlib.util.find_spec("ray") is None:
            raise InputError("--engine ray needs the ray extra: pip install 'hyperalign[ray]'")
        return RayEngine(resolved, options, resolved.concurrency, address=ray_address,
                         connect_timeout=ray_connect_timeout)
    raise InputError(f"--engine must be local or ray, not {name!r}")


def _policy(value: str) -> BadLinePolicy:
    if value not in ("fail", "skip"):
        raise InputError(f"--on-bad-line must be fail or skip, not {value!r}")
    return "fail" if value == "fail" else "skip"


async def _drive(results: AsyncIterator[Done], total: int, summary: BatchSummary, label: str) -> float:
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        bar = progress.add_task(label, total=total, rate="")
        async for done in results:
            summary.add(done)
            elapsed = max(time.perf_counter() - started, 1e-9)
            rate = f"{(summary.done + summary.failed) / elapsed:.1f}/s · {summary.usage.prompt_tokens + summary.usage.completion_tokens:,} tok"
            progress.update(bar, advance=1, rate=rate)
    return time.perf_counter() - started


def _held(spot: OutputSpot | None, target: Profiles) -> contextlib.AbstractContextManager[object]:
    """One batch per output: a file lock beside a file or folder, an advisory lock in a PostgreSQL store."""
    if spot is not None:
        return OutputLock(spot)
    return database_lock(target) or contextlib.nullcontext()


def _report(summary: BatchSummary, seconds: float, what: str) -> None:
    for bad in summary.bad_lines:
        say_warning(f"skipped line {bad.number}: {bad.message}")
    for failure in summary.failures[:20]:
        say_warning(f"{failure.key}: {failure.error}")
    if len(summary.failures) > 20:
        say_warning(f"… and {len(summary.failures) - 20} more failures")
    finished = summary.done + summary.failed
    say(f"{what}: {summary.done} done, {summary.failed} failed, {summary.skipped} already done, "
        f"{len(summary.bad_lines)} bad lines · {finished / max(seconds, 1e-9):.1f} per second · "
        f"{summary.usage.summary()}", style="")


def batch_infer(
    users: Annotated[Path, typer.Argument(metavar="USERS.jsonl", help='One user per line: {"id", "examples": [{"text", "prompt"?}], "attributes"?}.')],
    out: Annotated[str, typer.Option("--out", help="A profile store (URL, or a .sqlite3 file) or a folder (one JSON file per user).")],
    engine: EngineName = "local",
    ray_address: RayAddress = None,
    on_bad_line: OnBadLine = "fail",
    population: Annotated[bool, typer.Option("--population/--no-population", help="Compare each user also with the aggregates of the batch's other users (word counts and metric distributions; no text of theirs is used).")] = False,
    ray_connect_timeout: RayConnectTimeout = DEFAULT_CONNECT_TIMEOUT_S,
) -> None:
    """Infer a profile for every user of USERS.jsonl; users whose profile for these examples exists are skipped."""
    policy = _policy(on_bad_line)
    records, bad = read_records(users, UserRecord, "id", policy)
    spot = output_spot(out)
    if spot is not None:
        check_spot(spot)  # before anything is created there, and before any LLM call
    options = BatchOptions()
    if population:
        options.population = ReferenceStats.of("the batch's other users",
                                               [e.text for _, record in records for e in record.examples])
    target = open_profiles(out)
    salvage = Salvage(target.description)
    try:
        with _held(spot, target):
            works, skipped = plan_infer(records, target)
            if spot is not None:
                check_room(spot, len(works), "infer")
            summary = BatchSummary(skipped=skipped, bad_lines=bad)
            if skipped:
                say(f"Resuming: {skipped} of {len(records)} users already have their profile in "
                    f"{target.description}.", style="")
            runner = _engine(engine, options, ray_address, ray_connect_timeout=ray_connect_timeout)
            seconds = asyncio.run(_drive(abatch_infer(runner, works, target, salvage), len(works), summary,
                                         "infer"))
            if salvage.failure is None:
                profiles, generic, total = mark_generic_in(target, (user_id for user_id, _ in records))
                if generic:
                    say(f"{generic} of {total} hypotheses are shared by {GENERIC_SHARE:.0%} or more of the "
                        f"batch's {profiles} profiles: marked generic (ranked last when generating).", style="")
    finally:
        target.close()
    _report(summary, seconds, f"Profiles in {target.description}")
    if salvage.failure is not None:
        raise InputError(f"{target.description}: {salvage.summary()}")
    if summary.failed:  # finished work is kept; a rerun retries only the failed units
        raise typer.Exit(2)


def batch_generate(
    requests: Annotated[Path, typer.Argument(metavar="REQUESTS.jsonl", help='One request per line: {"id"?, "user_id", "task", "strategy"?, "examples"?}.')],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL output, written as results finish; rerunning resumes it.")],
    profiles: Annotated[Optional[str], typer.Option(help="Where the users' profiles are (store URL, .sqlite3 file or folder).")] = None,
    strategy: Annotated[Strategy, typer.Option(help="For requests that name none.")] = Strategy.HYPERALIGN,
    max_tokens: Annotated[int, typer.Option(min=1, max=100_000)] = 600,
    engine: EngineName = "local",
    ray_address: RayAddress = None,
    on_bad_line: OnBadLine = "fail",
    ray_connect_timeout: RayConnectTimeout = DEFAULT_CONNECT_TIMEOUT_S,
) -> None:
    """Write every request's text as its user would."""
    policy = _policy(on_bad_line)
    spot = OutputSpot(output, "file")
    check_spot(spot)
    check_output_path(output, requests)
    records, bad = read_records(requests, RequestRecord, "id", policy)
    options = BatchOptions(generation=GenerationOptions(max_tokens=max_tokens))
    resolved = settings()
    identity = run_identity({"backend": resolved.backend, "model": resolved.model, "base_url": resolved.base_url},
                            options)
    log = JsonlLog(output)
    salvage = Salvage(str(output))
    with OutputLock(spot):
        source = open_profiles(profiles, create=False) if profiles else None
        try:
            works, impossible, skipped = plan_generate(records, source, finished_keys(log, identity), strategy)
        finally:
            if source is not None:
                source.close()
        check_room(spot, len(works), "generate")
        summary = BatchSummary(skipped=skipped, bad_lines=bad)
        for done in impossible:
            summary.add(done)
        if skipped:
            say(f"Resuming: {skipped} of {len(records)} requests already in {output}.", style="")
        runner = _engine(engine, options, ray_address, resolved, ray_connect_timeout)
        seconds = asyncio.run(_drive(abatch_generate(runner, works, log, identity, salvage), len(works), summary,
                                     "generate"))
    _report(summary, seconds, f"Outputs in {output}")
    if salvage.failure is not None:
        raise InputError(f"{output}: {salvage.summary()}")
    if summary.failed:  # finished work is kept; a rerun retries only the failed units
        raise typer.Exit(2)


cli_command(batch_infer, group=batch_app, name="infer")
cli_command(batch_generate, group=batch_app, name="generate")
