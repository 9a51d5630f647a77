"""The batch jobs: plan the units (skipping what is already done: a killed batch resumes without redoing finished
work), run them on an engine, persist each result the moment it finishes, and yield it to the caller.

    works, skipped = plan_infer(users, target)
    async for done in abatch_infer(engine, works, target): ...
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..io import JsonlLog
from ..pipeline.generate import Strategy
from ..pipeline.generic import GENERIC_SHARE, MIN_POPULATION, count_keys, marked
from ..profiles.model import Profile, examples_hash
from ..usage import Usage
from .engines import Engine
from .outputs import Feed, Salvage
from .records import BadLine, RequestRecord, UserRecord
from .targets import Profiles
from .work import BatchOptions, Done, Work


@dataclass
class BatchSummary:
    done: int = 0
    failed: int = 0
    skipped: int = 0  # already finished by an earlier run
    bad_lines: list[BadLine] = field(default_factory=list)
    failures: list[Done] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    def add(self, done: Done) -> None:
        self.usage.add(done.usage)
        if done.ok:
            self.done += 1
        else:
            self.failed += 1
            self.failures.append(done)


def plan_infer(users: Iterable[tuple[str, UserRecord]], target: Profiles) -> tuple[list[Work], int]:
    """A unit per user whose profile the target does not hold yet for these same examples; how many were skipped."""
    works, skipped = [], 0
    for user_id, record in users:
        existing = target.get(user_id)
        if existing is not None and existing.examples_hash == examples_hash(record.examples):
            skipped += 1
            continue
        works.append(Work(key=user_id, kind="infer", user_id=user_id, examples=record.examples,
                          attributes=record.attributes))
    return works, skipped


async def abatch_infer(engine: Engine, works: Iterable[Work], target: Profiles,
                       salvage: Salvage | None = None) -> AsyncIterator[Done]:
    """Each profile is written the moment it is inferred. One that cannot be written (the target failed mid-run)
    goes to `salvage`'s rescue file, its unit is reported failed, and no further unit starts (outputs.py)."""
    salvage = salvage or Salvage(target.description)
    feed = Feed(works)
    async for done in engine.run(feed):
        if done.ok:
            assert done.result is not None
            profile = Profile.from_document(done.result, f"the profile of {done.user_id!r}")
            try:
                target.write(profile)
            except InputError as exc:
                feed.stop()
                done = done.model_copy(update={"error": salvage.keep(done.result, exc)})
        yield done
    salvage.not_started = _left(feed)


def _left(feed: Feed) -> int:
    """Units a stopped feed never handed out."""
    return sum(1 for _ in feed.rest()) if feed.stopped else 0


def mark_generic_in(target: Profiles, user_ids: Iterable[str], *, threshold: float = GENERIC_SHARE,
                    min_population: int = MIN_POPULATION) -> tuple[int, int, int]:
    """Mark the hypotheses shared by `threshold` or more of these users' profiles as generic (pipeline/generic.py),
    in two streaming passes (counts, then marks; one profile in memory at a time); rewrites only profiles whose
    marks changed. Returns (profiles, hypotheses marked generic, hypotheses in all)."""
    ids = list(dict.fromkeys(user_ids))
    counts, population = count_keys(p for p in (target.get(u) for u in ids) if p is not None)
    generic = total = 0
    for user_id in ids:
        profile = target.get(user_id)
        if profile is None:
            continue
        hypotheses = marked(profile.hypotheses, counts, population, threshold=threshold,
                            min_population=min_population)
        generic += sum(h.generic for h in hypotheses)
        total += len(hypotheses)
        if hypotheses != profile.hypotheses:
            target.write(profile.model_copy(update={"hypotheses": hypotheses}))
    return population, generic, total


def run_identity(engine_settings: dict[str, object], options: BatchOptions) -> str:
    """What a generation output file was made with (backend, model, generation options): a resumed run must match,
    so outputs of another model are never passed off as this run's."""
    text = repr(sorted(engine_settings.items())) + options.generation.model_dump_json()
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def finished_keys(log: JsonlLog, identity: str) -> set[str]:
    """Ids of the outputs already in `log`; refuses a log written by another run."""
    done: set[str] = set()
    for number, row in log.numbered_rows():
        if row.get("run") != identity:
            raise InputError(
                f"{log.path}, line {number}: holds an output made with another profile, model, strategy or "
                "--max-tokens; write to a new -o file (or delete this one) to start over")
        if isinstance(row.get("id"), str):
            done.add(row["id"])
    return done


def plan_generate(requests: Iterable[tuple[str, RequestRecord]], profiles: Profiles | None, done: set[str],
                  default: Strategy) -> tuple[list[Work], list[Done], int]:
    """Units to run, units that cannot run (a hyperalign request for a user without a profile), and how many were
    finished by an earlier run."""
    works, impossible, skipped = [], [], 0
    cache: dict[str, Profile | None] = {}
    for key, request in requests:
        if key in done:
            skipped += 1
            continue
        strategy = request.strategy or default
        profile = None
        if strategy is Strategy.HYPERALIGN:
            if request.user_id not in cache:
                cache[request.user_id] = profiles.get(request.user_id) if profiles else None
            profile = cache[request.user_id]
            if profile is None:
                impossible.append(Done(key=key, kind="generate", user_id=request.user_id,
                                       error=f"no profile for user {request.user_id!r}"))
                continue
        works.append(Work(key=key, kind="generate", user_id=request.user_id, task=request.task, strategy=strategy,
                          examples=request.examples, profile=profile.model_dump(mode="json") if profile else None))
    return works, impossible, skipped


async def abatch_generate(engine: Engine, works: Iterable[Work], log: JsonlLog, identity: str,
                          salvage: Salvage | None = None) -> AsyncIterator[Done]:
    """Failed units are not written, so that a rerun tries them again. One writer for the whole batch (JsonlLog's:
    each row flushed as it finishes, synced every second) rather than a sync per row, which stalled the event loop.

    A row that cannot be written (a full disk) goes to `salvage`'s rescue file, and so does every later one: the
    log is not touched again in this run, no further unit starts, and whatever part of the failed row reached the
    file is cut off at the end, so the log ends with its last whole row and a rerun resumes it."""
    salvage = salvage or Salvage(str(log.path))
    feed = Feed(works)
    intact = _size(log.path)  # the log's size after its last whole row
    try:
        with log.writer() as append:
            async for done in engine.run(feed):
                if done.ok:
                    assert done.result is not None
                    row = {"id": done.key, "user_id": done.user_id, "run": identity, **done.result}
                    row["output"] = row.pop("text")
                    try:
                        if salvage.failure is not None:
                            raise InputError(salvage.failure)
                        append(row)
                        intact = _size(log.path)
                    except InputError as exc:
                        feed.stop()
                        done = done.model_copy(update={"error": salvage.keep(row, exc)})
                yield done
    except OSError as exc:  # closing the log flushes once more: on a full disk that fails too
        if salvage.failure is None:
            raise InputError(f"{log.path}: cannot finish writing it ({exc.strerror or exc})") from None
    finally:
        if salvage.failure is not None:
            with contextlib.suppress(OSError):  # truncating frees space: it works on a full disk
                os.truncate(log.path, intact)
    salvage.not_started = _left(feed)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
