"""Tenants and their API keys. A key is `ha-<id>-<secret>`: the id is public (listings, logs), the secret is shown
once when the key is created and kept only as its SHA-256 — a random 256-bit secret needs no slow password hash,
and a stolen database yields no usable key. Every key belongs to one tenant and sees only that tenant's users."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import InputError
from ..io import check_name
from ..profiles.database import as_utc
from ..profiles.store import ProfileStore
from .tables import api_keys, service_secrets, tenants

KEY_PREFIX = "ha-"
TENANT_ID_LENGTH = 13  # "t" and 12 hex digits: the start of every user key
STRATEGIES = ("hyperalign", "hyperalign:no-facts", "hyperalign:examples=1", "hyperalign:examples=2", "hyperalign:excerpts=8",
              "hyperalign:revise", "hyperalign:best-of=4", "few-shot", "none")


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    strategy: str


@dataclass(frozen=True)
class KeyInfo:
    id: str
    tenant: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
    return strategy


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _tenant(connection: Connection, name: str, strategy: str | None) -> Tenant:
    row = connection.execute(select(tenants).where(tenants.c.name == name)).mappings().first()
    if row is None:
        tenant = Tenant(id="t" + secrets.token_hex((TENANT_ID_LENGTH - 1) // 2), name=name, strategy=strategy or "hyperalign")
        connection.execute(insert(tenants).values(id=tenant.id, name=name, strategy=tenant.strategy,
                                                  created_at=datetime.now(UTC)))
        return tenant
    if strategy is not None and strategy != row["strategy"]:  # a new key must not change every other key's default
        raise InputError(f"tenant {name!r} already exists with the default strategy {row['strategy']!r}; "
                         f"a key's creation does not change it (`hyperalign keys strategy {name} {strategy}` does)")
    return Tenant(row["id"], row["name"], row["strategy"])


def create_key(store: ProfileStore, tenant: str, *, name: str | None = None,
               strategy: str | None = None) -> tuple[str, KeyInfo]:
    """A new key for `tenant` (created if new): the full key, to show once, and what is kept of it."""
    check_name(tenant, "the tenant name")
    if name is not None:
        check_name(name, "the key name")
    if strategy is not None:
        check_strategy(strategy)
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with store.transaction(write=True) as connection:
        owner = _tenant(connection, tenant, strategy)
        connection.execute(insert(api_keys).values(id=key_id, tenant_id=owner.id, secret_hash=_hash(secret),
                                                   name=name, created_at=now))
    return f"{KEY_PREFIX}{key_id}-{secret}", KeyInfo(key_id, tenant, name, now, None)


def set_strategy(store: ProfileStore, tenant: str, strategy: str) -> Tenant:
    check_strategy(strategy)
    with store.transaction(write=True) as connection:
        row = connection.execute(select(tenants.c.id).where(tenants.c.name == tenant)).first()
        if row is None:
            raise InputError(f"no tenant {tenant!r} (`hyperalign keys list`)")
        connection.execute(update(tenants).where(tenants.c.id == row.id).values(strategy=strategy))
        return Tenant(row.id, tenant, strategy)


def list_keys(store: ProfileStore) -> list[KeyInfo]:
    query = (select(api_keys.c.id, tenants.c.name.label("tenant"), api_keys.c.name, api_keys.c.created_at,
                    api_keys.c.revoked_at)
             .join(tenants, tenants.c.id == api_keys.c.tenant_id).order_by(tenants.c.name, api_keys.c.created_at))
    with store.transaction() as connection:
        rows = connection.execute(query).all()
    return [KeyInfo(r.id, r.tenant, r.name, as_utc(r.created_at), as_utc(r.revoked_at) if r.revoked_at else None)
            for r in rows]


def revoke_key(store: ProfileStore, key_id: str) -> None:
    key_id = key_id.removeprefix(KEY_PREFIX).split("-", 1)[0]  # the id, or a whole key pasted by mistake
    with store.transaction(write=True) as connection:
        moved = connection.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                                   .values(revoked_at=datetime.now(UTC))).rowcount
        if moved != 1:
            known = connection.execute(select(api_keys.c.id).where(api_keys.c.id == key_id)).first()
            raise InputError(f"key {key_id!r} is already revoked" if known else
                             f"no key {key_id!r} (`hyperalign keys list`)")


def authenticate(store: ProfileStore, presented: str) -> tuple[str, Tenant] | None:
    """(key id, tenant) for a valid, unrevoked key; None otherwise — the caller answers 401 without saying why."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    key_id, _, secret = presented.removeprefix(KEY_PREFIX).partition("-")
    query = (select(api_keys.c.secret_hash, api_keys.c.revoked_at, tenants.c.id, tenants.c.name, tenants.c.strategy)
             .join(tenants, tenants.c.id == api_keys.c.tenant_id).where(api_keys.c.id == key_id))
    with store.transaction() as connection:
        row = connection.execute(query).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    return key_id, Tenant(row.id, row.name, row.strategy)


def tenant_by_id(store: ProfileStore, tenant_id: str) -> Tenant | None:
    with store.transaction() as connection:
        row = connection.execute(select(tenants).where(tenants.c.id == tenant_id)).mappings().first()
    return Tenant(row["id"], row["name"], row["strategy"]) if row else None


def service_secret(store: ProfileStore, name: str) -> bytes:
    """A random secret the service keeps in its database (e.g. the key of the end-user hash), made on first use;
    every replica sharing the database reads the same one."""
    query = select(service_secrets.c.value).where(service_secrets.c.name == name)
    try:
        with store.transaction(write=True) as connection:
            value = connection.execute(query).scalar()
            if value is None:
                value = secrets.token_hex(32)
                connection.execute(insert(service_secrets).values(name=name, value=value))
    except IntegrityError:  # another replica made it first: use theirs
        with store.transaction() as connection:
            value = connection.execute(query).scalar_one()
    return bytes.fromhex(value)

