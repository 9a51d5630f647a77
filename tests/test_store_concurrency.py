"""Real concurrent writers: separate processes editing one profile in one SQLite file lose no edit."""

from __future__ import annotations

import itertools
import multiprocessing
import time
from pathlib import Path

from hyperalign.profiles import edit
from hyperalign.profiles.edit import Edits, edit_profile
from hyperalign.profiles.model import Profile
from hyperalign.profiles.store import ProfileStore

WORKERS, EDITS_EACH = 4, 10


def writer(url: str, worker: int, start, saved, conflicts, together) -> None:
    """Runs in its own process: opens its own store and makes EDITS_EACH edits, alternately adding a hypothesis
    and an attribute; counts the edits that were saved and the races it lost."""
    apply_edits = edit.apply_edits
    first = [True]

    def slow_apply(profile: Profile, edits: Edits) -> Profile:
        if first[0]:
            # Every worker has read the same version before any saves: all but one must lose this race.
            first[0] = False
            together.wait(timeout=120)
        # Widens the window between reading a version and saving the next, so that writers keep colliding.
        time.sleep(0.005)
        return apply_edits(profile, edits)

    edit.apply_edits = slow_apply
    store = ProfileStore(url)
    start.wait()
    for n in range(EDITS_EACH):
        if n % 2 == 0:
            edits = Edits.from_flags(add=[f"habits=worker {worker} wrote edit {n}"])
        else:
            edits = Edits.from_flags(attribute=[f"w{worker}_e{n}=done"])
        info = edit_profile(store, "shared", edits, author=f"worker-{worker}", message=f"edit {n}")
        assert info is not None
        with saved.get_lock():
            saved.value += 1
    with conflicts.get_lock():
        conflicts.value += store.conflicts
    store.close()


def test_four_processes_times_ten_edits_lose_nothing(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    store = ProfileStore(url)
    base = Profile(user_id="shared", examples_hash="0", n_examples=0, backend="fake", model="m", prompt_version="v")
    store.save(base, expected_version=0, author="setup", action="import")

    context = multiprocessing.get_context("spawn")  # fresh interpreters: nothing shared but the database file
    start, saved, conflicts = context.Event(), context.Value("i", 0), context.Value("i", 0)
    together = context.Barrier(WORKERS)
    processes = [context.Process(target=writer, args=(url, w, start, saved, conflicts, together))
                 for w in range(WORKERS)]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes] == [0] * WORKERS
    assert saved.value == WORKERS * EDITS_EACH
    assert conflicts.value >= WORKERS - 1  # the races really happened (the first round alone loses WORKERS - 1)

    final = store.get("shared").profile
    statements = {h.statement for h in final.hypotheses}
    assert statements == {f"worker {w} wrote edit {n}" for w in range(WORKERS) for n in range(0, EDITS_EACH, 2)}
    assert final.attributes == {f"w{w}_e{n}": "done" for w in range(WORKERS) for n in range(1, EDITS_EACH, 2)}
    assert all(h.origin == "person" for h in final.hypotheses)

    history = store.history("shared")
    assert [v.version for v in history] == list(range(1, WORKERS * EDITS_EACH + 2))
    authors = [v.author for v in history[1:]]
    assert {a: authors.count(a) for a in set(authors)} == {f"worker-{w}": EDITS_EACH for w in range(WORKERS)}
    # Each version adds exactly one edit to the one before it: no writer overwrote another's version.
    for before, after in itertools.pairwise(history):
        old, new = store.get("shared", before.version).profile, store.get("shared", after.version).profile
        assert len(new.hypotheses) + len(new.attributes) == len(old.hypotheses) + len(old.attributes) + 1
    store.close()
