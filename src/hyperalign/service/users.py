"""End users: who a request is for, their example texts, everything kept about them (export) and its deletion.

A user's key in the database is `<tenant id>:<user id>`: the same user id under two tenants is two people, and no
query of one tenant can name a row of another. The upstream model never sees the raw id: it gets a keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, union
from sqlalchemy.engine import Connection

from ..errors import InputError
from ..io import check_name
from ..profiles.database import as_utc
from ..profiles.model import UserExample
from ..profiles.store import ProfileStore, profiles_table
from .errors import NotFound
from .schemas import MAX_USER_ID, StoredExample
from .tables import idempotency_keys, jobs, review_links, user_examples, user_token_usage, webhook_deliveries
from .tenants import Tenant

log = logging.getLogger("hyperalign.service.users")
USER_HEADER = "X-Hyperalign-User"
# Where the end user is looked for, in this order: our header, then the OpenAI request fields that name one.
USER_SOURCES = (f"header {USER_HEADER}", "body user", "body safety_identifier", "body metadata.user_id")


@dataclass(frozen=True)
class EndUser:
    tenant: Tenant
    id: str

    @property
    def key(self) -> str:
        return f"{self.tenant.id}:{self.id}"


def end_user(tenant: Tenant, user_id: str) -> EndUser:
    return EndUser(tenant, check_name(user_id, "the user id", MAX_USER_ID))


def resolve_user(tenant: Tenant, header: str | None, body: Mapping[str, Any]) -> EndUser | None:
    metadata = body.get("metadata")
    candidates = (header, body.get("user"), body.get("safety_identifier"),
                  metadata.get("user_id") if isinstance(metadata, Mapping) else None)
    for source, value in zip(USER_SOURCES, candidates, strict=True):
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InputError(f"{source}: the user id must be a string")
        return end_user(tenant, value)
    return None


def hashed_id(secret: bytes, user: EndUser) -> str:
    """What the upstream gets instead of the user id: stable per user (abuse tracking still works), not reversible
    without the service's secret."""
    return "ha-" + hmac.new(secret, user.key.encode(), hashlib.sha256).hexdigest()[:32]


def add_examples(store: ProfileStore, user: EndUser, examples: list[UserExample]) -> int:
    """Store the texts; the user's number of examples afterwards."""
    with store.transaction(write=True) as connection:
        return insert_examples(connection, user, examples)


def insert_examples(connection: Connection, user: EndUser, examples: list[UserExample]) -> int:
    """add_examples inside the caller's transaction."""
    now = datetime.now(UTC)
    if examples:
        connection.execute(insert(user_examples), [
            {"user_key": user.key, "prompt": e.prompt, "text": e.text, "created_at": now} for e in examples])
    return int(connection.execute(select(func.count()).where(user_examples.c.user_key == user.key)).scalar_one())


def list_examples(store: ProfileStore, user_key: str, after_id: int | None = None,
                  latest: int | None = None) -> list[StoredExample]:
    """The user's texts in the order they were added: all, those after `after_id`, or only the `latest` few."""
    query = select(user_examples).where(user_examples.c.user_key == user_key)
    if after_id is not None:
        query = query.where(user_examples.c.id > after_id)
    # The latest few: the newest first from the database, turned back into the order they were added.
    newest_first = latest is not None
    query = query.order_by(user_examples.c.id.desc()).limit(latest) if newest_first else query.order_by(user_examples.c.id)
    with store.transaction() as connection:
        rows = connection.execute(query).mappings().all()
    found = [StoredExample(id=r["id"], prompt=r["prompt"], text=r["text"], created_at=as_utc(r["created_at"]))
             for r in rows]
    return found[::-1] if newest_first else found


def delete_example(store: ProfileStore, user: EndUser, example_id: int) -> None:
    """One text of the user, gone (and no copy left in the SQLite WAL). The profile keeps what was inferred until a
    full re-inference (`POST .../jobs` with `full`) rebuilds it from the texts that are left."""
    with store.transaction(write=True) as connection:
        removed = connection.execute(delete(user_examples).where(
            user_examples.c.user_key == user.key, user_examples.c.id == example_id)).rowcount
    if not removed:
        raise NotFound(f"no example {example_id} for user {user.id!r}")
    store.erase_freed()


def list_users(store: ProfileStore, tenant: Tenant, *, after: str | None, limit: int) -> tuple[list[str], bool]:
    """The tenant's user ids (those with texts or a profile), in id order, after the cursor `after`; and whether
    more follow. Keyset pagination: each page is one indexed range read, however many users come before it."""
    prefix = f"{tenant.id}:"
    start = prefix + (after or "")
    keys = union(select(user_examples.c.user_key.label("key")).where(user_examples.c.user_key.startswith(prefix)),
                 select(profiles_table.c.user_id.label("key")).where(profiles_table.c.user_id.startswith(prefix))
                 ).subquery()
    query = select(keys.c.key).where(keys.c.key > start).order_by(keys.c.key).limit(limit + 1)
    with store.transaction() as connection:
        found = [row[0].removeprefix(prefix) for row in connection.execute(query)]
    return found[:limit], len(found) > limit


def exists(store: ProfileStore, user: EndUser) -> bool:
    """Whether anything is kept of the user (examples or a profile)."""
    if store.current_version(user.key) is not None:
        return True
    with store.transaction() as connection:
        return connection.execute(select(user_examples.c.id).where(user_examples.c.user_key == user.key)
                                  .limit(1)).first() is not None


def delete_user(store: ProfileStore, user: EndUser) -> dict[str, int]:
    """Every row of the user, in one transaction: jobs, examples, profile versions, the hypotheses the person
    deleted, and the service's bookkeeping about them. What was removed, by kind.

    The jobs go first: their rows fence the jobs (service/jobs.py). On PostgreSQL deleting them waits for a job that
    is committing its result right now, and the statements after it then see that result and delete it too; a job
    that commits later finds its row gone and saves nothing. (SQLite runs one writer at a time anyway.) Afterwards
    the SQLite WAL is checkpointed and truncated, so no copy of the deleted rows stays in the -wal file, and the
    database file holds zeros where they were (`secure_delete`, profiles/database.py)."""
    with store.transaction(write=True) as connection:
        removed = {"jobs": connection.execute(delete(jobs).where(jobs.c.user_key == user.key)).rowcount}
        removed["examples"] = connection.execute(delete(user_examples).where(user_examples.c.user_key == user.key)
                                                 ).rowcount
        removed["profile_versions"] = store.delete(user.key, connection)
        # the answers kept for retried requests about the user (they name the user)
        connection.execute(delete(idempotency_keys).where(idempotency_keys.c.user_key == user.key))
        connection.execute(delete(review_links).where(review_links.c.user_key == user.key))  # their links stop
        connection.execute(delete(webhook_deliveries).where(webhook_deliveries.c.user_key == user.key))
        # A user who only chatted under a token budget has these rows alone, and is deleted (and exported) by them.
        removed["token_usage_days"] = connection.execute(
            delete(user_token_usage).where(user_token_usage.c.user_key == user.key)).rowcount
    if not any(removed.values()):
        raise NotFound(f"no user {user.id!r}")
    if not store.erase_freed():
        log.warning("after deleting a user, a reader kept the SQLite WAL from being truncated; it is reused later")
    return {k: int(v or 0) for k, v in removed.items()}
