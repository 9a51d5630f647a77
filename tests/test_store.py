"""The profile store: migrations, versions, history, the optimistic version check and its last line of defence."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import insert

from hyperalign.errors import ConflictError, InputError
from hyperalign.profiles.model import Evidence, Hypothesis, Profile
from hyperalign.profiles.store import (
    VERSION_TABLE,
    Change,
    ProfileStore,
    as_url,
    default_store_url,
    versions_table,
)
from hyperalign.profiles.tables import metadata


def make_profile(user_id: str = "ann", **updates) -> Profile:
    profile = Profile(
        user_id=user_id,
        attributes={"role": "reporter"},
        hypotheses=[
            Hypothesis(aspect="writing_style", statement="Writes short sentences.",
                       evidence=[Evidence(quote="Fog again.", verified=True, example_index=0)], supported=True),
            Hypothesis(aspect="personality", statement="Is dryly funny.", supported=True),
        ],
        examples_hash="abc", n_examples=2, backend="fake", model="fake-model", prompt_version="infer_hypotheses.v1",
    )
    return profile.model_copy(update=updates)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "profiles.sqlite3"


@pytest.fixture
def store(store_path: Path):
    opened = ProfileStore(store_path)
    yield opened
    opened.close()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


STORE_CHAIN = ["0001_profiles", "0003_rejections", "0004_statement_counts", "0009_statement_word_keys"]


def test_opening_applies_and_records_the_migrations(store, store_path):
    assert store.applied_migrations() == STORE_CHAIN
    assert {"profiles", "profile_versions", VERSION_TABLE} <= tables(store_path)
    with sqlite3.connect(store_path) as db:
        assert db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [("0009_statement_word_keys",)]
    assert "tenants" not in tables(store_path)  # the service's tables come with the service's chain only


def test_the_migrations_build_exactly_the_tables_the_code_uses(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from hyperalign.profiles.statements import metadata as statements_metadata

    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, [metadata, statements_metadata]) == []


def test_reopening_is_idempotent_and_keeps_the_data(store, store_path):
    profile = make_profile()
    store.save(profile, expected_version=0, author="ann", action="import")
    store.close()
    for _ in range(2):
        with ProfileStore(store_path) as again:
            assert again.applied_migrations() == STORE_CHAIN
            assert again.get("ann").profile == profile
    with sqlite3.connect(store_path) as db:
        assert db.execute(f"SELECT COUNT(*) FROM {VERSION_TABLE}").fetchone() == (1,)
        assert db.execute("SELECT COUNT(*) FROM profile_versions").fetchone() == (1,)


def test_a_store_from_a_newer_hyperalign_is_refused_clearly(store, store_path):
    store.close()
    with sqlite3.connect(store_path) as db:
        db.execute(f"UPDATE {VERSION_TABLE} SET version_num = '0099_from_the_future'")
    with pytest.raises(InputError, match="0099_from_the_future.*newer hyperalign"):
        ProfileStore(store_path)


def test_store_location_from_flag_env_and_xdg(tmp_path, monkeypatch):
    assert as_url(tmp_path / "a.sqlite3") == f"sqlite:///{tmp_path / 'a.sqlite3'}"
    assert as_url("postgresql://u:p@host/db") == "postgresql://u:p@host/db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_url() == f"sqlite:///{tmp_path / 'data' / 'hyperalign' / 'profiles.sqlite3'}"
    monkeypatch.setenv("HYPERALIGN_STORE", str(tmp_path / "env.sqlite3"))
    assert default_store_url() == f"sqlite:///{tmp_path / 'env.sqlite3'}"


def test_an_unusable_store_url_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="profile store URL"):
        ProfileStore("nosuchdialect://x/y")
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(InputError, match="dir.sqlite3 is a directory; give a database file"):
        ProfileStore(tmp_path / "dir.sqlite3")


def test_save_get_versions_and_history(store):
    first = store.save(make_profile(), expected_version=0, author="ann", action="import", message="from ann.json")
    assert first.version == 1
    edited = make_profile(attributes={"role": "editor"})
    second = store.save(edited, expected_version=1, author="bob", action="edit", details={"why": "promotion"})
    assert second.version == 2
    assert store.current_version("ann") == 2
    assert store.get("ann").profile.attributes == {"role": "editor"}
    assert store.get("ann", version=1).profile.attributes == {"role": "reporter"}
    history = store.history("ann")
    assert [(v.version, v.author, v.action, v.message) for v in history] == [
        (1, "ann", "import", "from ann.json"), (2, "bob", "edit", None)]
    assert history[1].details == {"why": "promotion"}
    assert history[0].created_at <= history[1].created_at and history[0].created_at.tzinfo is not None
    [summary] = store.list_profiles()
    assert (summary.user_id, summary.version, summary.hypotheses, summary.author) == ("ann", 2, 2, "bob")


def test_missing_profiles_and_versions_are_named(store):
    with pytest.raises(InputError, match="no profile 'nobody'"):
        store.get("nobody")
    with pytest.raises(InputError, match="no profile 'nobody'"):
        store.history("nobody")
    store.save(make_profile(), expected_version=0, author="a", action="import")
    with pytest.raises(InputError, match="no version 7; it has 1 to 1"):
        store.get("ann", version=7)
    with pytest.raises(ValidationError, match="the user id is empty"):
        make_profile(user_id=" ")


def test_a_stale_save_is_a_conflict_and_changes_nothing(store):
    store.save(make_profile(), expected_version=0, author="a", action="import")
    with pytest.raises(ConflictError, match="already exists"):
        store.save(make_profile(), expected_version=0, author="b", action="import")
    store.save(make_profile(attributes={"role": "first"}), expected_version=1, author="a", action="edit")
    with pytest.raises(ConflictError, match="based on version 1, the store has version 2"):
        store.save(make_profile(attributes={"role": "second"}), expected_version=1, author="b", action="edit")
    assert store.get("ann").profile.attributes == {"role": "first"}
    assert [v.version for v in store.history("ann")] == [1, 2]


def test_the_unique_version_constraint_stops_a_writer_that_slipped_past_the_check(store):
    store.save(make_profile(), expected_version=0, author="a", action="import")
    # A rogue writer created version 2 without moving the profile's version pointer.
    with store.engine.begin() as connection:
        connection.execute(insert(versions_table).values(
            user_id="ann", version=2, created_at=store.history("ann")[0].created_at, author="rogue",
            action="edit", profile=make_profile().model_dump_json()))
    with pytest.raises(ConflictError, match="changed while this change was being made"):
        store.save(make_profile(attributes={"role": "x"}), expected_version=1, author="a", action="edit")
    # The failed save rolled back as a whole: the pointer did not move either.
    assert store.current_version("ann") == 1


def test_save_without_an_expected_version_appends(store):
    assert store.save(make_profile(), expected_version=None, author="a", action="import").version == 1
    assert store.save(make_profile(), expected_version=None, author="a", action="import").version == 2


def test_modify_reapplies_a_change_that_lost_a_race(store_path, store):
    store.save(make_profile(), expected_version=0, author="a", action="import")
    other = ProfileStore(store_path)
    calls = []

    def add_attribute(profile: Profile) -> Profile:
        calls.append(dict(profile.attributes))
        if len(calls) == 1:  # another process saves between our read and our write
            current = other.get("ann")
            other.save(current.profile.model_copy(update={"attributes": {**current.profile.attributes, "b": "2"}}),
                       expected_version=current.version, author="other", action="edit")
        return profile.model_copy(update={"attributes": {**profile.attributes, "a": "1"}})

    info = store.modify("ann", add_attribute, author="me", action="edit", message="add a")
    assert info is not None and info.version == 3 and info.message == "add a"
    assert calls == [{"role": "reporter"}, {"role": "reporter", "b": "2"}]
    assert store.get("ann").profile.attributes == {"role": "reporter", "b": "2", "a": "1"}
    other.close()


def test_modify_with_no_change_saves_nothing_and_a_change_carries_its_details(store):
    store.save(make_profile(), expected_version=0, author="a", action="import")
    assert store.modify("ann", lambda p: p, author="a", action="edit") is None
    assert store.modify("ann", lambda p: None, author="a", action="edit") is None
    info = store.modify("ann", lambda p: Change(p.model_copy(update={"n_examples": 9}), "nine", {"retired": ["x1"]}),
                        author="a", action="update")
    assert (info.version, info.message, info.details) == (2, "nine", {"retired": ["x1"]})
    assert store.retired_ids("ann") == {"x1"}


def test_modify_gives_up_after_its_attempts(store_path):
    store = ProfileStore(store_path, attempts=2)
    store.save(make_profile(), expected_version=0, author="a", action="import")

    def always_loses(profile: Profile) -> Profile:
        current = store.get("ann")
        store.save(current.profile.model_copy(update={"n_examples": current.version + 10}),
                   expected_version=current.version, author="other", action="edit")
        return profile.model_copy(update={"n_examples": 1})

    with pytest.raises(ConflictError, match="gave up after 2 attempts"):
        store.modify("ann", always_loses, author="me", action="edit")
    store.close()


def test_a_broken_stored_profile_names_the_field(store, store_path):
    store.save(make_profile(), expected_version=0, author="a", action="import")
    with sqlite3.connect(store_path) as db:
        db.execute("UPDATE profile_versions SET profile = json_set(profile, '$.n_examples', 'many')")
    with pytest.raises(InputError, match="'ann' version 1: invalid profile: field 'n_examples'"):
        store.get("ann")


def test_an_in_memory_store_is_one_database_for_every_thread():
    import threading

    store = ProfileStore("sqlite://", ephemeral=True)
    store.save(make_profile(), expected_version=0, author="a", action="import")
    seen = []
    worker = threading.Thread(target=lambda: seen.append(store.current_version("ann")))
    worker.start()
    worker.join()
    assert seen == [1]
