"""The store's database: where it is (a URL, or a file path made into a SQLite URL) and the engine that opens it —
SQLite in WAL mode with writers queueing for the lock, or any SQLAlchemy URL (PostgreSQL through psycopg).

Deleted data on SQLite: every connection runs with `secure_delete=ON` (some builds, Debian's among them, compile it
in as the default; others do not), so the content of a deleted row, and any page
that becomes free, is overwritten with zeros when the deletion is written (in the WAL, then in the database file at
the next checkpoint) instead of lingering in free space. The WAL itself still holds the older copies of the pages
(with the row in them) until a checkpoint restarts it; `erase_freed` checkpoints and truncates it to zero bytes,
which the store does after deleting a person's data. The -shm file holds only the WAL's index (page numbers and
checksums), never row content. What no database setting reaches: copies outside the database (backups, the file
system's own journal or snapshots, the blocks of a truncated file until they are reused)."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from ..errors import InputError, StoreError
from ..redaction import redact_url


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
        raise InputError(f"cannot use the profile store URL {shown!r}: {' '.join(str(exc).split())[:200]}") from None
    in_memory = parsed.database in (None, "", ":memory:") or str(parsed.database).startswith("file::memory:")
    if in_memory:
        if not ephemeral:
            raise InputError(f"the profile store {url!r} is in memory and would lose every profile when the command "
                             "ends; give a file path or a database URL")
        # One shared connection: each new connection to ":memory:" would be a new, empty database.
        engine = create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        path = Path(str(parsed.database)).expanduser()
        if path.is_dir():
            raise InputError(f"the profile store {path} is a directory; give a database file")
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
        cursor.execute("PRAGMA secure_delete=ON")  # deleted content is zeroed, not left in free pages
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



def erase_freed(engine: Engine) -> bool:
    """After a deletion on SQLite: copy the WAL into the database file and truncate the WAL to zero bytes
    (`wal_checkpoint(TRUNCATE)`), so the page images written before the deletion — the deleted rows among them — are
    gone from the -wal file; with `secure_delete` the database file holds zeros where the rows were. It waits (the
    busy timeout) for readers still on an older snapshot; False if one outlasted it, in which case the WAL is
    checkpointed as far as it could be and the rest is overwritten as the WAL is reused. A no-op elsewhere: on
    PostgreSQL a deleted row stays in its table's pages until VACUUM reuses them (autovacuum, or the operator's), and in
    the server's WAL segments until they are recycled — retention there is the database operator's."""
    database = str(engine.url.database or "")
    if engine.url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file::memory:"):
        return True
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    except sqlite3.Error:  # the deletion itself is committed; the WAL is overwritten as it is reused
        return False
    finally:
        connection.close()
    return bool(busy == 0)
