"""Shared fixtures. Every test runs with XDG_CACHE_HOME, XDG_DATA_HOME (and the config file) pointed into tmp_path, so nothing
here can read or write the user's real completion cache or hyperalign.toml."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hyperalign import HyperAlign, UserExample
from hyperalign.llm import Completion, CompletionCache, CompletionRequest, LLMClient
from hyperalign.llm.fake import FakeBackend
from hyperalign.profiles.model import Evidence, Hypothesis, InferenceReport, Profile
from hyperalign.usage import Usage

# A lighthouse keeper who writes terse logbook-style notes: short sentences, numbers, a recurring sign-off.
EXAMPLE_TEXTS: list[tuple[str | None, str]] = [
    (
        "Write a note to the relief keeper about the lamp.",
        "Fog again. The lamp turned 412 times last night and not once did it complain.\n"
        "Oil the gears before you touch anything else. Gears first, opinions later.\n"
        "— Keeper Morwenna, North Light",
    ),
    (
        "Report the storm damage.",
        "Storm from the west, force nine by midnight. Two panes gone on the gallery.\n"
        "I have boarded them with the spare crate lids. Gears first, opinions later.\n"
        "— Keeper Morwenna, North Light",
    ),
    (
        None,
        "Supply boat late. Again. Tea rationed to three cups a day until it docks.\n"
        "If you eat the last biscuit, log it. The log does not lie and neither do I.\n"
        "— Keeper Morwenna, North Light",
    ),
    (
        "Welcome the new assistant keeper.",
        "Welcome aboard the rock. You will climb 176 steps eleven times a day.\n"
        "Count them. Counting keeps you honest and keeps you awake.\n"
        "— Keeper Morwenna, North Light",
    ),
    (
        None,
        "Seals on the landing stage this morning, nine of them, very rude.\n"
        "They do not move for anyone, not even the inspector. Good seals.\n"
        "— Keeper Morwenna, North Light",
    ),
]


# The suite runs on pytest-xdist workers with `--dist loadgroup` (pyproject's addopts). What tests share beyond their
# own tmp_path is kept on one worker each, by an xdist group: one throw-away PostgreSQL cluster for all PostgreSQL
# variants (each worker would start its own), one local Ray at a time, and the real model's runs in sequence.
RESOURCE_GROUPS = {"integration": "embedded-model", "slow": "embedded-model", "postgres": "postgres", "ray": "ray"}
UNGROUPED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    """Mark each PostgreSQL variant `postgres` (from the `database_url` parameter), then put every item that uses a
    shared resource in that resource's xdist group: before `-m` deselects and xdist reads the groups. Afterwards,
    check that xdist did group them: it names a group in the item's id, which some pytest releases silently undo
    (pytest-xdist#1386), and then every worker would start its own cluster and two runs of the model would share
    the cores."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        group = next((g for marker, g in RESOURCE_GROUPS.items() if item.get_closest_marker(marker)), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    yield
    if getattr(config.option, "loadgroup", False):  # set on xdist's workers under --dist loadgroup
        for item in items:
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
                item.stash[UNGROUPED] = True


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.stash.get(UNGROUPED, False):
        pytest.fail(f"pytest-xdist did not put this test in its group: pytest {pytest.__version__} breaks "
                    "--dist loadgroup (pytest-xdist#1386); install the versions the dev extra pins", pytrace=False)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every cache/config location into a temporary directory and drop HYPERALIGN_* settings."""
    home = tmp_path_factory.mktemp("isolated-home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))  # the profile store
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "xdg-state"))  # crash logs
    monkeypatch.setenv("HYPERALIGN_CONFIG", str(home / "no-such-hyperalign.toml"))
    for name in list(os.environ):
        if name.startswith(("HYPERALIGN_", "OPENAI_")) and name != "HYPERALIGN_CONFIG":
            monkeypatch.delenv(name)
    return home


@pytest.fixture(autouse=True)
def one_llama_thread_beside_other_workers(request: pytest.FixtureRequest, isolated_environment: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp's threads spin while they wait for each other: with another worker on the same cores, a run on
    every core is many times slower than one on a single thread. So the real model gets one thread per worker."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # set by pytest-xdist
    if workers > 1 and request.node.get_closest_marker("integration"):
        monkeypatch.setenv("HYPERALIGN_THREADS", "1")


@pytest.fixture(autouse=True)
def devices_stay_devices() -> Iterator[None]:
    """CI runs as root, where a writer that replaces its output atomically would turn /dev/null into a regular file
    and silently change every later test that relies on it; fail the test that did it, not a bystander."""
    yield
    assert Path("/dev/null").is_char_device(), "this test replaced /dev/null with a regular file"


@pytest.fixture
def register_test_backend(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """register_backend for one test: the registry is restored afterwards, so no backend leaks into other tests."""
    from hyperalign.llm import registry

    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
    return registry.register_backend


@pytest.fixture
def tmp_cache(tmp_path: Path) -> Iterator[CompletionCache]:
    cache = CompletionCache(tmp_path / "cache" / "llm-cache.sqlite3")
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """One throw-away PostgreSQL cluster for the session (tests/postgres_cluster.py). Without the server binaries
    the PostgreSQL variants are skipped, unless CI_REQUIRE_POSTGRES=required (CI), where that is a failure."""
    from postgres_cluster import PostgresCluster, server_binaries

    if server_binaries() is None:
        if os.environ.get("CI_REQUIRE_POSTGRES") == "required":
            pytest.fail("PostgreSQL server binaries not found, and CI_REQUIRE_POSTGRES=required")
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    # Not under pytest's temporary folder: that is private to root, and the server runs as another account.
    folder = Path(tempfile.mkdtemp(prefix="hyperalign-postgres-"))
    cluster = PostgresCluster(folder).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind the store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.sqlite3'}"
    cluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"t{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**12}")


@pytest.fixture
def examples() -> list[UserExample]:
    return [UserExample(prompt=prompt, text=text) for prompt, text in EXAMPLE_TEXTS]


def keeper_profile() -> Profile:
    """The keeper's profile as inference leaves it: a supported hypothesis with one verified quote (from the second
    example) and one that was not found, an unsupported hypothesis, two attributes, and a report."""
    return Profile(
        user_id="morwenna",
        attributes={"likely_role": "lighthouse keeper", "audience": "relief keepers"},
        hypotheses=[
            Hypothesis(
                aspect="writing_style",
                statement="Signs every note with the same keeper sign-off.",
                evidence=[
                    Evidence(quote="Keeper Morwenna, North Light", verified=True, example_index=1),
                    Evidence(quote="Yours sincerely, the management", verified=False),
                ],
                supported=True,
            ),
            Hypothesis(
                aspect="personality",
                statement="Believes the moon is made of cheese.",
                evidence=[Evidence(quote="the moon is cheese", verified=False)],
                supported=False,
            ),
        ],
        examples_hash="0123456789abcdef",
        n_examples=5,
        backend="fake",
        model="fake-model",
        prompt_version="infer_hypotheses.v1+infer_attributes.v1",
        created_at=datetime(2025, 5, 1, 12, 30, tzinfo=UTC),
        report=InferenceReport(proposed=3, dropped_unsupported=1, usage=Usage(llm_calls=4, prompt_tokens=100)),
    )


HyperAlignFactory = Callable[..., tuple[HyperAlign, FakeBackend]]


class MeteredBackend(FakeBackend):
    """Reports its own compute time for every call, as the embedded backend does from llama.cpp's timings."""

    SECONDS = 2.5

    def reply(self, request: CompletionRequest) -> Completion:
        return super().reply(request).model_copy(update={"seconds": self.SECONDS})


class KilledAfter(FakeBackend):
    """Answers `limit` calls, then dies as a killed process would: raises `error` (KeyboardInterrupt, which is not an
    Exception, unless a test names its own), "killed after <limit> calls"."""

    def __init__(self, limit: int, responses=None, *, error: type[BaseException] = KeyboardInterrupt):
        super().__init__(responses)
        self.limit, self.error = limit, error

    def reply(self, request: CompletionRequest) -> Completion:
        if len(self.requests) >= self.limit:
            raise self.error(f"killed after {self.limit} calls")
        return super().reply(request)


def single_call(per_aspect: Callable[[CompletionRequest], str]) -> Callable[[CompletionRequest], str]:
    """A scripted responder written for the paper's per-aspect calls, answering the single-call proposal too: the
    one `infer_profile` request is answered as its aspects' calls would be (and the attributes' call), and a re-ask
    for failed quotes gets no better quotes. Other requests go to the responder unchanged."""
    def respond(request: CompletionRequest) -> str:
        if request.schema_name == "fix_evidence":
            return json.dumps({key: [] for key in request.json_schema["properties"]})
        if request.schema_name != "infer_profile":
            return per_aspect(request)
        answer: dict = {}
        for aspect in request.json_schema["properties"]:
            name = "infer_attributes" if aspect == "attributes" else f"infer_hypotheses-{aspect}"
            reply = json.loads(per_aspect(request.model_copy(update={"schema_name": name})))
            answer[aspect] = reply if aspect == "attributes" else reply["hypotheses"]
        return json.dumps(answer)
    return respond


@pytest.fixture
def make_hyperalign(tmp_cache: CompletionCache) -> HyperAlignFactory:
    """make_hyperalign(responses=None, *, cache=<tmp_cache>, backend=None, concurrency=4, **FakeBackend kwargs)
    returns (HyperAlign(LLMClient(FakeBackend(...), cache=...)), the backend) so tests can read backend.requests."""

    def build(
        responses=None,
        *,
        cache: CompletionCache | None | bool = True,
        backend: FakeBackend | None = None,
        concurrency: int = 4,
        **backend_kwargs,
    ) -> tuple[HyperAlign, FakeBackend]:
        fake = backend if backend is not None else FakeBackend(responses, **backend_kwargs)
        store = tmp_cache if cache is True else (cache or None)
        return HyperAlign(LLMClient(fake, cache=store, concurrency=concurrency)), fake

    return build


@pytest.fixture
def service(database_url: str) -> Iterator[Any]:
    """The service over a real store (SQLite or PostgreSQL), the fake backend behind it (service_support.py); a
    module needing another set-up defines its own `service`."""
    from service_support import start_service

    server, running = start_service(database_url)
    yield running
    server.__exit__()
    running.store.close()
