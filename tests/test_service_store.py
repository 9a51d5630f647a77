"""The service's tables on SQLite and PostgreSQL alike: migrations, tenants and keys, examples, durable jobs (claimed
by one worker only, recovered after a worker dies) and the deletion of a user."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from hyperalign.errors import InputError
from hyperalign.profiles.legacy_chain import SERVICE_VERSION_TABLE
from hyperalign.profiles.model import Profile, UserExample
from hyperalign.profiles.statements import metadata as statements_metadata
from hyperalign.profiles.store import Action, ProfileStore
from hyperalign.profiles.tables import VERSION_TABLE
from hyperalign.profiles.tables import metadata as store_metadata
from hyperalign.service.errors import NotFound
from hyperalign.service.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, JobQueue, JobWorker, Outcome
from hyperalign.service.tables import jobs, open_service_store
from hyperalign.service.tables import metadata as service_metadata
from hyperalign.service.tenants import (
    KEY_PREFIX,
    authenticate,
    create_key,
    list_keys,
    revoke_key,
    service_secret,
    set_strategy,
)
from hyperalign.service.users import add_examples, delete_user, end_user, hashed_id, list_examples, resolve_user
from service_support import all_rows


@pytest.fixture
def store(database_url):
    with open_service_store(database_url) as opened:
        yield opened


def profile_for(key: str) -> Profile:
    return Profile(user_id=key, examples_hash="x", n_examples=1, backend="fake", model="fake", prompt_version="p")


STORE_CHAIN = ["0001_profiles", "0003_rejections", "0004_statement_counts", "0009_statement_word_keys"]
SERVICE_CHAIN = ["0002_service", "0005_idempotency", "0006_review_links", "0007_webhooks", "0008_user_token_usage"]


def recorded(store: ProfileStore) -> dict[str, list[str]]:
    with store.transaction() as connection:
        return {table: sorted(connection.execute(text(f"SELECT version_num FROM {table}")).scalars())
                for table in (VERSION_TABLE, SERVICE_VERSION_TABLE)}


def test_a_new_database_gets_every_migration_of_both_chains(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    assert store.applied_migrations() == STORE_CHAIN + SERVICE_CHAIN
    assert recorded(store) == {VERSION_TABLE: ["0009_statement_word_keys"], SERVICE_VERSION_TABLE: ["0008_user_token_usage"]}
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "version_table": VERSION_TABLE,
            "include_name": lambda name, kind, _: not (kind == "table" and name == SERVICE_VERSION_TABLE)})
        assert compare_metadata(context, [store_metadata, service_metadata, statements_metadata]) == []


def test_a_store_the_cli_made_becomes_a_service_store_and_stays_readable_by_the_cli(database_url):
    with ProfileStore(database_url) as plain:
        plain.save(profile_for("ann"), expected_version=0, author="ann", action=Action.IMPORT)
        assert plain.applied_migrations() == STORE_CHAIN
    with open_service_store(database_url) as service:
        assert service.applied_migrations() == STORE_CHAIN + SERVICE_CHAIN
        create_key(service, "acme")
    with ProfileStore(database_url) as plain:  # the service's chain is not the CLI's business
        assert plain.applied_migrations() == STORE_CHAIN and plain.current_version("ann") == 1


@pytest.mark.parametrize("old_head, dropped", [
    ("0008_user_token_usage", []),
    ("0006_review_links", ["webhook_deliveries", "webhook_secrets", "webhooks", "user_token_usage"]),
    ("0004_statement_counts", ["webhook_deliveries", "webhook_secrets", "webhooks", "user_token_usage",
                               "review_links", "idempotency_keys"]),
])
def test_a_database_from_the_single_chain_is_split_and_brought_up_to_date(database_url, old_head, dropped):
    """Until 0.1.0 one chain held both: such a database records one revision in the store's version table."""
    with open_service_store(database_url) as service:
        key, _ = create_key(service, "acme")
        with service.transaction(write=True) as connection:  # as the old chain left it at `old_head`
            for table in [*dropped, SERVICE_VERSION_TABLE]:
                connection.execute(text(f"DROP TABLE {table}"))
            connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '{old_head}'"))
    with ProfileStore(database_url) as plain:  # the CLI first: it takes its part of the record and no more
        assert plain.applied_migrations() == STORE_CHAIN
    with open_service_store(database_url) as service:
        assert service.applied_migrations() == STORE_CHAIN + SERVICE_CHAIN
        assert authenticate(service, key) is not None  # the data stayed
        assert recorded(service)[SERVICE_VERSION_TABLE] == ["0008_user_token_usage"]


def test_keys_authenticate_until_revoked_and_only_their_hash_is_kept(store):
    key, info = create_key(store, "acme", name="backend")
    found = authenticate(store, key)
    assert found is not None and found[0] == info.id and found[1].name == "acme"
    assert authenticate(store, key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # one character off
    assert authenticate(store, "sk-not-ours") is None and authenticate(store, "") is None
    secret = key.removeprefix(f"{KEY_PREFIX}{info.id}-")  # the secret itself may contain "-"
    assert len(secret) >= 40
    assert not any(secret in repr(row) for rows in all_rows(store).values() for row in rows)
    revoke_key(store, info.id)
    assert authenticate(store, key) is None
    assert [k.revoked_at is not None for k in list_keys(store)] == [True]
    with pytest.raises(InputError, match="already revoked"):
        revoke_key(store, info.id)
    with pytest.raises(InputError, match="no key"):
        revoke_key(store, "feedbeef")


def test_tenants_keep_their_strategy_and_refuse_unknown_ones(store):
    key, _ = create_key(store, "acme", strategy="few-shot")
    assert authenticate(store, key)[1].strategy == "few-shot"
    set_strategy(store, "acme", "none")
    assert authenticate(store, key)[1].strategy == "none"
    with pytest.raises(InputError, match="unknown strategy"):
        set_strategy(store, "acme", "telepathy")
    with pytest.raises(InputError, match="no tenant"):
        set_strategy(store, "nobody", "none")


def test_the_same_user_id_under_two_tenants_is_two_people(store):
    _, a = create_key(store, "acme")
    _, b = create_key(store, "other")
    acme = authenticate(store, create_key(store, "acme")[0])[1]
    other = authenticate(store, create_key(store, "other")[0])[1]
    add_examples(store, end_user(acme, "ann"), [UserExample(text="Acme's Ann.")])
    assert list_examples(store, end_user(other, "ann").key) == []
    assert [e.text for e in list_examples(store, end_user(acme, "ann").key)] == ["Acme's Ann."]
    assert a.tenant != b.tenant


def test_the_end_user_is_resolved_in_the_documented_order(store):
    tenant = authenticate(store, create_key(store, "acme")[0])[1]
    body = {"user": "b", "safety_identifier": "c", "metadata": {"user_id": "d"}}
    assert resolve_user(tenant, "a", body).id == "a"
    assert resolve_user(tenant, None, body).id == "b"
    assert resolve_user(tenant, None, {"safety_identifier": "c", "metadata": {"user_id": "d"}}).id == "c"
    assert resolve_user(tenant, None, {"metadata": {"user_id": "d"}}).id == "d"
    assert resolve_user(tenant, None, {}) is None
    with pytest.raises(InputError, match="control character"):
        resolve_user(tenant, "a\x1b[31m", {})


def test_the_upstream_gets_a_keyed_hash_that_is_stable_per_user(store):
    tenant = authenticate(store, create_key(store, "acme")[0])[1]
    secret = service_secret(store, "user-hash")
    assert service_secret(store, "user-hash") == secret  # made once, then read: replicas share it
    ann, bob = end_user(tenant, "ann"), end_user(tenant, "bob")
    assert hashed_id(secret, ann) == hashed_id(secret, ann) != hashed_id(secret, bob)
    assert "ann" not in hashed_id(secret, ann)


def test_a_queued_job_is_claimed_by_exactly_one_worker(store):
    first, second = JobQueue(store), JobQueue(store)
    job = first.enqueue("t1:ann", "refresh")
    assert first.enqueue("t1:ann", "refresh").id == job.id  # asking twice queues it once
    claims = [q.claim() for q in (first, second)]
    assert [c is not None for c in claims] == [True, False]
    assert first.get("t1:ann", job.id).status == RUNNING and first.get("t2:ann", job.id) is None
    assert second.renew(job.id) is False and first.renew(job.id) is True  # only the holder renews the lease


def test_a_job_whose_worker_died_is_queued_again_then_failed_after_its_attempts(store):
    queue = JobQueue(store, max_attempts=2)
    job = queue.enqueue("t1:ann", "refresh")

    def die_holding_it() -> None:
        assert queue.claim() is not None
        with store.transaction(write=True) as connection:  # the lease runs out: nobody renews it
            connection.execute(update(jobs).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))

    die_holding_it()
    assert queue.recover() == 1 and queue.get("t1:ann", job.id).status == QUEUED
    die_holding_it()
    assert queue.recover() == 1
    failed = queue.get("t1:ann", job.id)
    assert failed.status == FAILED and "interrupted 2 times" in failed.error and failed.attempts == 2


def test_deleting_a_user_removes_every_row_of_that_user_and_nothing_else(store):
    tenant = authenticate(store, create_key(store, "acme")[0])[1]
    ann, bob = end_user(tenant, "ann"), end_user(tenant, "bob")
    for user in (ann, bob):
        add_examples(store, user, [UserExample(text=f"Text by {user.id}: Gears first.")])
        store.save(profile_for(user.key), expected_version=0, author="t", action=Action.INFER)
        JobQueue(store).enqueue(user.key, "refresh")
    removed = delete_user(store, ann)
    assert removed == {"examples": 1, "profile_versions": 1, "jobs": 1, "token_usage_days": 0}
    dump = json.dumps({name: [list(map(str, r)) for r in rows] for name, rows in all_rows(store).items()})
    assert ann.key not in dump and "Text by ann" not in dump
    assert bob.key in dump and "Text by bob" in dump
    with pytest.raises(NotFound, match="no user 'ann'"):
        delete_user(store, ann)


def test_a_job_that_holds_the_event_loop_keeps_its_lease(store):
    queue, other = JobQueue(store, lease_seconds=0.3), JobQueue(store, lease_seconds=0.3)
    job = queue.enqueue("t1:ann", "refresh")
    recovered = []

    async def handler(user_key, claimed):
        for _ in range(6):  # 0.6 s without yielding to the event loop: twice the lease
            time.sleep(0.1)
            recovered.append(other.recover())  # another worker looking for jobs whose worker died
        return Outcome()

    assert asyncio.run(JobWorker(queue, handler).run_once()) is True
    assert sum(recovered) == 0 and queue.get("t1:ann", job.id).status == SUCCEEDED
