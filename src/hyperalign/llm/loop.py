"""One event loop for every LLM call in the process, on a thread of its own.

What an event loop owns — a client's semaphore and token budget, the calls in flight, a backend's connection pool —
works only on that loop. If every sync call started a fresh loop, `concurrency` and `tokens_per_minute` would hold
within one call and reset at the next, and two threads would each get their own. So every call runs here:

- sync callers (`run`) hand their coroutine to the loop and wait for it, from any thread;
- async callers on another loop (`on_llm_loop`) await it there, their cancellation carried across;
- code already on the loop runs directly.

The caller's context variables travel with the coroutine (a usage collector opened by the caller sees the calls).
The thread is a daemon: a process never waits for it to exit. A forked child (Ray, multiprocessing) starts its own
on first use, since the parent's thread does not exist there."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
# After Ctrl-C, how long a sync caller waits for the cancelled work to run its cleanup (files closed, results kept).
CANCEL_GRACE_SECONDS = 10.0
# A sync caller waits in slices this long: a signal can reach any thread, and only a main thread that wakes from time
# to time runs the Ctrl-C handler.
_WAKE_SECONDS = 0.2


class _LoopThread:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="hyperalign-llm-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        while True:
            try:
                self.loop.run_forever()
                return
            except BaseException:
                # A KeyboardInterrupt or SystemExit raised inside a task leaves run_forever after the task has taken
                # it (its caller is told); the loop goes on serving everyone else.
                continue


_current: _LoopThread | None = None
_lock = threading.Lock()


def llm_loop() -> asyncio.AbstractEventLoop:
    """The process's LLM loop, started on first use (again in a forked child)."""
    global _current
    with _lock:
        if _current is None or _current.pid != os.getpid():
            _current = _LoopThread()
        return _current.loop


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _submit(coroutine: Coroutine[Any, Any, T]) -> tuple[concurrent.futures.Future[T], threading.Event]:
    """Start `coroutine` on the LLM loop in a copy of the caller's context. The future cancels the task when it is
    cancelled; the event is set once the task has finished (its cleanup included)."""
    loop = llm_loop()
    context = contextvars.copy_context()
    outer: concurrent.futures.Future[T] = concurrent.futures.Future()
    finished = threading.Event()

    def copy_outcome(task: asyncio.Task[T]) -> None:
        finished.set()
        if outer.cancelled():
            return
        try:
            if task.cancelled():
                outer.cancel()
            elif (error := task.exception()) is not None:
                outer.set_exception(error)
            else:
                outer.set_result(task.result())
        except concurrent.futures.InvalidStateError:  # cancelled by the caller meanwhile
            pass

    def start() -> None:
        if outer.cancelled():
            coroutine.close()
            finished.set()
            return
        task = loop.create_task(coroutine, context=context)
        task.add_done_callback(copy_outcome)
        outer.add_done_callback(lambda f: loop.call_soon_threadsafe(task.cancel) if f.cancelled() else None)

    loop.call_soon_threadsafe(start)
    return outer, finished


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the LLM loop and wait for its result: the sync API's one way in, from any thread, also
    from code inside another running loop (a notebook). Ctrl-C cancels the work and waits for its cleanup."""
    if _on_loop_thread(llm_loop()):
        coroutine.close()
        raise RuntimeError("a blocking hyperalign call was made on hyperalign's own event loop (e.g. from an "
                           "on_done callback); use the async API there")
    future, finished = _submit(coroutine)
    try:
        while not concurrent.futures.wait([future], timeout=_WAKE_SECONDS).done:
            pass
        return future.result()
    except BaseException:
        if future.cancel():  # interrupted while it ran: stop it, let it keep what it finished
            finished.wait(CANCEL_GRACE_SECONDS)
        raise


async def on_llm_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await a coroutine on the LLM loop from any loop; cancelling the caller cancels the work."""
    if _on_loop_thread(llm_loop()):
        return await coroutine
    future, _ = _submit(coroutine)
    return await asyncio.wrap_future(future)
