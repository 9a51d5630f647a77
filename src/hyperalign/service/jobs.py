"""Durable background jobs: a row per job in the service's database, claimed and leased through the database alone.

Why no job library: the ones that keep jobs in the database (procrastinate, PgQueuer) need PostgreSQL, and the
service's default store is SQLite; a broker (Celery, RQ, Dramatiq) would add a server to run. What the database gives
is enough: a worker claims a queued job with one conditional UPDATE (only one replica's succeeds), holds a lease it
renews while it works, and any replica re-queues a job whose lease ran out — its worker died — or marks it failed
after `max_attempts`. A job writes its result as one new profile version in one transaction at its very end, so a
killed job leaves nothing half-written, and running it again is safe.

A job's row is also its fence: the transaction that saves the job's result first updates the job's own row, and only
while it is still running under this worker's claim (`fence`). Deleting the user deletes their jobs' rows in the
same transaction as their data, so a job that was running meanwhile finds its row gone and saves nothing
(JobCancelled) — no tombstone is kept, which would itself be a trace of the deleted user. The same check stops a
worker whose lease lapsed and whose job another worker took over."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from ..errors import HyperAlignError
from ..profiles.database import as_utc
from ..profiles.store import ProfileStore
from .errors import public_message
from .schemas import Job
from .tables import jobs

log = logging.getLogger("hyperalign.service.jobs")

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


class JobCancelled(HyperAlignError):
    """The job may no longer write: its user was deleted (and the job with them), or another worker holds it."""


def _job(row: object) -> Job:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    for name in ("created_at", "updated_at"):
        values[name] = as_utc(values[name])
    return Job.model_validate({k: values[k] for k in Job.model_fields if k in values})


class JobQueue:
    def __init__(self, store: ProfileStore, *, lease_seconds: float = 60.0, max_attempts: int = 3):
        self.store, self.lease, self.max_attempts = store, timedelta(seconds=lease_seconds), max_attempts
        self.worker = f"{socket.gethostname()[:60]}-{secrets.token_hex(4)}"

    def enqueue(self, user_key: str, kind: str) -> Job:
        """A new job, or the user's job of this kind that is still waiting (asking twice does not run it twice)."""
        with self.store.transaction(write=True) as connection:
            return self.enqueue_in(connection, user_key, kind)

    def enqueue_in(self, connection: Connection, user_key: str, kind: str) -> Job:
        """enqueue inside the caller's transaction."""
        now = datetime.now(UTC)
        waiting = connection.execute(select(jobs).where(jobs.c.user_key == user_key, jobs.c.kind == kind,
                                                        jobs.c.status == QUEUED)).first()
        if waiting is not None:
            return _job(waiting)
        job_id = "job-" + secrets.token_hex(8)
        connection.execute(insert(jobs).values(id=job_id, user_key=user_key, kind=kind, status=QUEUED,
                                               created_at=now, updated_at=now, attempts=0))
        return _job(connection.execute(select(jobs).where(jobs.c.id == job_id)).one())

    def get(self, user_key: str, job_id: str) -> Job | None:
        with self.store.transaction() as connection:
            row = connection.execute(select(jobs).where(jobs.c.id == job_id, jobs.c.user_key == user_key)).first()
        return _job(row) if row is not None else None

    def for_user(self, user_key: str) -> list[Job]:
        with self.store.transaction() as connection:
            rows = connection.execute(select(jobs).where(jobs.c.user_key == user_key).order_by(jobs.c.created_at))
            return [_job(row) for row in rows]

    def claim(self) -> tuple[str, Job] | None:
        """The oldest queued job, now running under this worker's lease, with its user key; None when none waits."""
        with self.store.transaction() as connection:
            candidates = connection.execute(select(jobs.c.id).where(jobs.c.status == QUEUED)
                                            .order_by(jobs.c.created_at).limit(8)).scalars().all()
        for job_id in candidates:
            now = datetime.now(UTC)
            with self.store.transaction(write=True) as connection:
                won = connection.execute(
                    update(jobs).where(jobs.c.id == job_id, jobs.c.status == QUEUED)
                    .values(status=RUNNING, worker=self.worker, lease_until=now + self.lease, updated_at=now,
                            attempts=jobs.c.attempts + 1)).rowcount
                if won == 1:
                    row = connection.execute(select(jobs).where(jobs.c.id == job_id)).one()
                    return row.user_key, _job(row)
        return None

    def renew(self, job_id: str) -> bool:
        """Extend the lease; False if the job is no longer this worker's (re-queued after a stall, or deleted)."""
        now = datetime.now(UTC)
        with self.store.transaction(write=True) as connection:
            return connection.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.worker == self.worker,
                                                         jobs.c.status == RUNNING)
                                      .values(lease_until=now + self.lease, updated_at=now)).rowcount == 1

    def fence(self, job: Job) -> Callable[[Connection], None]:
        """The check a job's writes run first, in their own transaction (`ProfileStore.fenced`): the job's row must
        still exist and be running under this claim (this worker, this attempt). The UPDATE also locks the row until
        the write commits, so a deletion of the user waits for the write and then deletes its result too."""

        def check(connection: Connection) -> None:
            held = connection.execute(update(jobs).where(
                jobs.c.id == job.id, jobs.c.worker == self.worker, jobs.c.status == RUNNING,
                jobs.c.attempts == job.attempts).values(updated_at=datetime.now(UTC))).rowcount
            if held != 1:
                raise JobCancelled(f"job {job.id} was cancelled: its user was deleted, or another worker took it over")

        return check

    def finish(self, job_id: str, *, version: int | None = None, through: int | None = None,
               error: str | None = None) -> None:
        now = datetime.now(UTC)
        with self.store.transaction(write=True) as connection:
            connection.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.worker == self.worker)
                               .values(status=FAILED if error else SUCCEEDED, error=error, result_version=version,
                                       examples_through=through, lease_until=None, updated_at=now))

    def examples_through(self, user_key: str) -> int | None:
        """The last example a finished job of this user took in."""
        with self.store.transaction() as connection:
            return connection.execute(select(func.max(jobs.c.examples_through))
                                      .where(jobs.c.user_key == user_key, jobs.c.status == SUCCEEDED)).scalar()

    def recover(self) -> int:
        """Jobs whose worker stopped renewing its lease (killed, or its machine gone): queued again, or failed once
        they have been tried `max_attempts` times. How many were recovered."""
        now = datetime.now(UTC)
        stale = (jobs.c.status == RUNNING) & (jobs.c.lease_until < now)
        with self.store.transaction(write=True) as connection:
            failed = connection.execute(update(jobs).where(stale, jobs.c.attempts >= self.max_attempts).values(
                status=FAILED, error=f"interrupted {self.max_attempts} times (its worker stopped)", lease_until=None,
                updated_at=now)).rowcount
            requeued = connection.execute(update(jobs).where(stale).values(
                status=QUEUED, worker=None, lease_until=None, updated_at=now)).rowcount
        return int(failed or 0) + int(requeued or 0)


class Outcome(BaseModel):
    version: int | None = None  # the profile version the job saved; None when there was nothing to change
    through: int | None = None  # the last example it took in


Handler = Callable[[str, Job], Awaitable[Outcome]]
Finished = Callable[[str, str], Awaitable[None]]  # (user key, job id) of a job that succeeded or failed


class JobWorker:
    """Runs claimed jobs one at a time (the LLM client inside a job is itself concurrent), renewing the lease."""

    def __init__(self, queue: JobQueue, handler: Handler, *, poll_seconds: float = 1.0,
                 on_finished: Finished | None = None):
        self.queue, self.handler, self.poll, self.on_finished = queue, handler, poll_seconds, on_finished

    async def run_forever(self) -> None:
        while True:
            try:
                worked = await self.run_once()
            except Exception:  # a database hiccup must not end the worker; the next poll tries again
                log.exception("job worker: polling failed")
                worked = False
            if not worked:
                await asyncio.sleep(self.poll)

    async def run_once(self) -> bool:
        """Recover stale jobs, then run one; whether there was one."""
        await asyncio.to_thread(self.queue.recover)
        claimed = await asyncio.to_thread(self.queue.claim)
        if claimed is None:
            return False
        user_key, job = claimed
        keeper = _LeaseKeeper(self.queue, job.id)
        try:
            outcome = await self.handler(user_key, job)
        except JobCancelled as exc:  # nothing was saved, and the job's row is gone or another worker's
            log.info("%s", exc)
            return True
        except Exception as exc:  # the job fails with its reason; the worker goes on
            log.exception("job %s failed", job.id)
            # The reason is shown to API clients (GET .../jobs/ID): in the API's words, without credentials.
            reason = public_message(" ".join(str(exc).split()))[:500] or type(exc).__name__
            await asyncio.to_thread(self.queue.finish, job.id, error=reason)
        else:
            await asyncio.to_thread(self.queue.finish, job.id, version=outcome.version, through=outcome.through)
        finally:
            keeper.stop()
        if self.on_finished is not None:
            try:  # e.g. webhooks: their failure is theirs to record, never the job's
                await self.on_finished(user_key, job.id)
            except Exception:
                log.exception("job %s: the finish hook failed", job.id)
        return True


class _LeaseKeeper(threading.Thread):
    """Renews a running job's lease every third of it, from its own thread: work that holds the event loop (an
    in-process model, a synchronous backend) must not let the lease lapse, or another worker would run the job
    again."""

    def __init__(self, queue: JobQueue, job_id: str):
        super().__init__(name=f"lease-{job_id}", daemon=True)
        self.queue, self.job_id, self.stopped = queue, job_id, threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stopped.wait(self.queue.lease.total_seconds() / 3):
            try:
                self.queue.renew(self.job_id)
            except Exception:  # a database hiccup: the next renewal tries again
                log.exception("job %s: renewing the lease failed", self.job_id)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
