"""Where a batch's profiles are written (and a generation batch reads them): a profile store (SQLite file or any
SQLAlchemy URL, e.g. the service's PostgreSQL) or a folder with one JSON file per user."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ..errors import InputError
from ..io import write_atomically
from ..profiles.model import Profile
from ..profiles.store import Action, ProfileStore
from .outputs import OutputSpot

BATCH_AUTHOR = "hyperalign-batch"
STORE_SUFFIXES = (".sqlite3", ".sqlite", ".db")


class Profiles(Protocol):
    description: str

    def get(self, user_id: str) -> Profile | None: ...

    def write(self, profile: Profile) -> None: ...

    def close(self) -> None: ...


class ProfileFolder:
    """One JSON file per user; the folder is created with its first profile (`outputs.check_spot` checks, before
    a batch starts, that it can be)."""

    def __init__(self, path: Path, *, create: bool = True):
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: not a folder (a profile store needs a URL or a {'/'.join(STORE_SUFFIXES)} file)")
        if not create and not path.is_dir():
            raise InputError(f"{path}: no such folder of profiles (give the output of a batch inference)")
        self.path, self.description = path, str(path)

    def file(self, user_id: str) -> Path:
        # Any user id becomes a safe file name: percent-encoded, or hashed when that would be too long.
        name = quote(user_id, safe="")
        if len(name) > 150:
            name = f"{name[:80]}-{hashlib.sha256(user_id.encode()).hexdigest()[:16]}"
        return self.path / f"{name}.json"

    def get(self, user_id: str) -> Profile | None:
        path = self.file(user_id)
        return Profile.load(path) if path.exists() else None

    def write(self, profile: Profile) -> None:
        write_atomically(self.file(profile.user_id), profile.to_json() + "\n")

    def close(self) -> None:
        pass


class StoreProfiles:
    def __init__(self, location: str, *, create: bool = True):
        path = Path(location)
        if not create and "://" not in location and not path.is_file():
            raise InputError(f"{location}: no such profile store (give the output of a batch inference)")
        self.store = ProfileStore(location)
        self.description = self.store.display_url

    def get(self, user_id: str) -> Profile | None:
        return self.store.get(user_id).profile if self.store.current_version(user_id) is not None else None

    def write(self, profile: Profile) -> None:
        self.store.save(profile, expected_version=None, author=BATCH_AUTHOR, action=Action.INFER,
                        message="batch inference")

    def close(self) -> None:
        self.store.close()


class DatabaseLock:
    """One batch per PostgreSQL store at a time (the file lock's counterpart for a database server, outputs.py): an
    advisory lock on a connection of its own, held for the whole run and dropped with that connection, so a killed
    batch leaves nothing locked. A second batch fails at once, naming the store and the holder, which the lock's
    connection announces as its application_name."""

    def __init__(self, store: ProfileStore):
        digest = hashlib.sha256(f"hyperalign-batch:{store.display_url}".encode()).digest()
        self.store, self.key = store, int.from_bytes(digest[:8], "big", signed=True)
        self._connection: Any = None

    def __enter__(self) -> DatabaseLock:
        from sqlalchemy import text

        connection = self.store.engine.connect()
        who = f"hyperalign batch, pid {os.getpid()} on {socket.gethostname()}"[:63]
        connection.execute(text("SELECT set_config('application_name', :who, false)"), {"who": who})
        if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar():
            holder = connection.execute(text(
                "SELECT a.application_name, host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :high "
                "AND l.objid = :low AND l.objsubid = 1"),
                {"high": (self.key >> 32) & 0xFFFFFFFF, "low": self.key & 0xFFFFFFFF}).first()
            connection.close()
            who = f"{holder[0] or 'a client'} at {holder[1] or 'this host'}" if holder else "another client"
            raise InputError(f"{self.store.display_url}: another batch is writing to it ({who}); let it finish, "
                             "or stop it and rerun (finished work is kept), or write to another output")
        self._connection = connection
        return self

    def __exit__(self, *_: object) -> None:
        if self._connection is not None:
            self._connection.close()  # ends the session: the lock goes with it


def database_lock(target: Profiles) -> DatabaseLock | None:
    """The lock for a batch writing to a PostgreSQL store; None for anything else."""
    if isinstance(target, StoreProfiles) and target.store.engine.dialect.name == "postgresql":
        return DatabaseLock(target.store)
    return None


# SQLite writes these beside its database file (rollback journal, WAL and its index).
SQLITE_COMPANIONS = ("-journal", "-wal", "-shm")


def output_spot(location: str) -> OutputSpot | None:
    """Where `open_profiles(location)` writes on this machine's disk: None for a database server."""
    if "://" in location:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(location)
        except ArgumentError:
            return None  # ProfileStore names the bad URL
        database = url.database if url.get_backend_name() == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return OutputSpot(Path(database), "file", SQLITE_COMPANIONS)
    if location.endswith(STORE_SUFFIXES):
        return OutputSpot(Path(location), "file", SQLITE_COMPANIONS)
    return OutputSpot(Path(location), "folder")


def open_profiles(location: str, *, create: bool = True) -> Profiles:
    """A store for a URL or a database file name; a folder otherwise. `create=False` (reading profiles): it must
    exist already."""
    if "://" in location or location.endswith(STORE_SUFFIXES):
        return StoreProfiles(location, create=create)
    return ProfileFolder(Path(location), create=create)
