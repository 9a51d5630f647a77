"""The store's database: where it is (a URL, or a file path made into a SQLite URL) and the engine that opens it —
SQLite in WAL mode with writers queueing for the lock, or any SQLAlchemy URL (PostgreSQL through psycopg)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from ..errors import StoreError
from ..llm.endpoint import redact_url


def default_store_url() -> str:
    configured = os.environ.get("HYPERALIGN_STORE")
    if configured:
        return as_url(configured)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return as_url(base / "hyperalign" / "profiles.sqlite3")


def as_url(location: str | Path) -> str:
    """A SQLAlchemy URL as given, or a file path made into a SQLite URL."""
    text = str(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().absolute()}"



def as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def create_store_engine(url: str, ephemeral: bool = False) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError, ValueError) as exc:
        shown = redact_url(url)
        raise StoreError(f"cannot use the profile store URL {shown!r}: {' '.join(str(exc).split())[:200]}") from None
    in_memory = parsed.database in (None, "", ":memory:") or str(parsed.database).startswith("file::memory:")
    if in_memory:
        if not ephemeral:
            raise StoreError(f"the profile store {url!r} is in memory and would lose every profile when the command "
                             "ends; give a file path or a database URL")
        # One shared connection: each new connection to ":memory:" would be a new, empty database.
        engine = create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        path = Path(str(parsed.database)).expanduser()
        if path.is_dir():
            raise StoreError(f"the profile store {path} is a directory; give a database file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"the profile store {path}: cannot create its folder ({exc.strerror or exc})") from None
        # Waiting for the write lock is how concurrent SQLite writers queue up; the version check does the rest.
        engine = create_engine(parsed, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling is switched off so that ours (below) is the one that runs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A write takes the lock up front: a deferred transaction that read first and then tried to write after
        # another writer committed would fail at once with SQLITE_BUSY instead of waiting its turn.
        immediate = connection.get_execution_options().get("hyperalign_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine

