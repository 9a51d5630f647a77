"""Where batch work runs. Both engines take the units lazily, keep at most `concurrency` in flight and yield each
result as it finishes (not in input order).

- local: asyncio tasks in this process, sharing one LLM client (its cache, connection pool and budget).
- ray: async Ray actors, one per CPU of the cluster by default, each with its own LLM client built from the same
  settings; `ray.init(address=...)` joins a running cluster, or starts a local Ray. Ray does the scheduling."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from ..api import HyperAlign
from ..config import Settings
from .ray_connect import DEFAULT_CONNECT_TIMEOUT_S, connect_ray
from .work import BatchOptions, Done, Work, perform


class Engine(Protocol):
    name: str

    def run(self, works: Iterable[Work]) -> AsyncIterator[Done]: ...


async def _bounded(works: Iterable[Work], concurrency: int, start: Any) -> AsyncIterator[Done]:
    """Start units with `start(work) -> awaitable of Done` while fewer than `concurrency` run; yield as they finish.
    Finished units arrive on a queue: constant work per unit (asyncio.wait would re-register all that run)."""
    finished: asyncio.Queue[asyncio.Future[Done]] = asyncio.Queue()
    running: set[asyncio.Future[Done]] = set()
    queue = iter(works)

    def launch() -> bool:
        work = next(queue, None)
        if work is None:
            return False
        future = asyncio.ensure_future(start(work))
        running.add(future)
        future.add_done_callback(finished.put_nowait)
        return True

    try:
        while len(running) < concurrency and launch():
            pass
        while running:
            future = await finished.get()
            running.discard(future)
            launch()
            yield future.result()
    finally:
        for future in running:
            future.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*running, return_exceptions=True)


class LocalEngine:
    name = "local"

    def __init__(self, ha: HyperAlign, options: BatchOptions, concurrency: int):
        self.ha, self.options, self.concurrency = ha, options, concurrency

    def run(self, works: Iterable[Work]) -> AsyncIterator[Done]:
        return _bounded(works, self.concurrency, lambda work: perform(self.ha, work, self.options))


class BatchWorker:
    """A Ray actor: its own LLM client, its own event loop; runs several units at once (max_concurrency)."""

    def __init__(self, settings: Settings, options: BatchOptions):
        self.ha = HyperAlign.from_settings(settings)
        self.options = options

    async def perform(self, work: dict[str, Any]) -> dict[str, Any]:
        done = await perform(self.ha, Work.model_validate(work), self.options)
        return done.model_dump(mode="json")


class RayEngine:
    name = "ray"

    def __init__(self, settings: Settings, options: BatchOptions, concurrency: int, *, address: str | None = None,
                 workers: int | None = None, num_cpus: int | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S):
        import ray

        if not ray.is_initialized():
            # A local Ray (address None) gets num_cpus; a cluster has its own.
            connect_ray(address, num_cpus if address is None else None, connect_timeout)
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        count = min(count, concurrency)
        actor = ray.remote(BatchWorker)  # one CPU each: spread over the cluster
        per_actor = math.ceil(concurrency / count)
        self.actors = [actor.options(max_concurrency=per_actor).remote(settings, options) for _ in range(count)]
        self.concurrency = concurrency
        self._next = 0

    def _start(self, work: Work) -> Any:
        actor = self.actors[self._next % len(self.actors)]
        self._next += 1
        reference = actor.perform.remote(work.model_dump(mode="json"))  # type: ignore[attr-defined]

        async def result() -> Done:
            return Done.model_validate(await asyncio.wrap_future(reference.future()))

        return result()

    def run(self, works: Iterable[Work]) -> AsyncIterator[Done]:
        return _bounded(works, self.concurrency, self._start)
