"""Where a batch's profiles are written (and a generation batch reads them): a profile store (SQLite file or any
SQLAlchemy URL, e.g. the service's PostgreSQL) or a folder with one JSON file per user."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol
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
            raise InputError(f"{path}: no such folder of profiles (give the --out of `batch infer`)")
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
            raise InputError(f"{location}: no such profile store (give the --out of `batch infer`)")
        self.store = ProfileStore(location)
        self.description = self.store.display_url

    def get(self, user_id: str) -> Profile | None:
        return self.store.get(user_id).profile if self.store.current_version(user_id) is not None else None

    def write(self, profile: Profile) -> None:
        self.store.save(profile, expected_version=None, author=BATCH_AUTHOR, action=Action.INFER,
                        message="batch inference")

    def close(self) -> None:
        self.store.close()


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
