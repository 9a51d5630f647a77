"""Living profiles: every change to a user's profile is a new, attributed version in a database.

SQLite by default, any SQLAlchemy URL otherwise. The schema is managed by alembic migrations shipped in
`store_migrations/` and applied when a store opens. Writers never lose each other's changes: a save names the
version it was based on (`expected_version`) and fails with ConflictError if the profile moved on since; the
read-modify-write helper `modify` then re-reads and re-applies the change.

A person's deletions win too: a version a person saves (action "edit") that drops hypotheses, facts or voice samples
records each one, as it was, in `hypothesis_rejections`; an automated update or a new inference never brings a
rejected one back (same id, or the same statement or sentence once normalized), and a later version that holds it
again lifts the rejection (rejections.py: reading and restoring them)."""

from __future__ import annotations

import copy
import getpass
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from ..errors import ConflictError, InputError, StoreError
from ..io import check_name, check_text
from ..migration_chain import MigrationChain
from . import statements
from .database import as_url, as_utc, create_store_engine, default_store_url, erase_freed
from .legacy_chain import split_legacy_record
from .model import Fact, Hypothesis, Profile, VoiceSample, said
from .tables import MAX_USER_ID, MIGRATIONS, VERSION_TABLE, profiles_table, rejections_table, versions_table


class Action:
    INFER, IMPORT, EDIT, PIN, UNPIN, UPDATE = "infer", "import", "edit", "pin", "unpin", "update"


@dataclass(frozen=True)
class VersionInfo:
    user_id: str
    version: int
    created_at: datetime
    author: str
    action: str
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredProfile:
    profile: Profile
    info: VersionInfo

    @property
    def version(self) -> int:
        return self.info.version


@dataclass(frozen=True)
class ProfileSummary:
    user_id: str
    version: int
    updated_at: datetime
    author: str
    action: str
    hypotheses: int


@dataclass
class Change:
    """What a `modify` callback returns when the version's message or details depend on the re-applied edit."""

    profile: Profile
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def default_author() -> str:
    """Who a person's change is attributed to when no author is given: the login name ($USER)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name anywhere (e.g. a container with an unnamed uid)
        return "hyperalign"


def _backoff(attempt: int) -> None:
    # Jittered and growing, so writers that collided once do not collide again in lockstep.
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


class ProfileStore:
    """Every version of every profile, in any SQLAlchemy database (SQLite by default, PostgreSQL for the service):
    who changed what and when, person's edits and deletions kept through automated updates, concurrent writers
    serialized by version (`modify` re-reads and re-applies a change that lost a race)."""

    def __init__(self, url: str | Path | None = None, *, attempts: int = 30, ephemeral: bool = False,
                 beside: Sequence[MigrationChain] = ()):
        """`attempts`: how often `modify` re-reads and re-applies a change that lost a race. An in-memory SQLite
        store (`sqlite://`) keeps nothing once closed: it is refused unless `ephemeral=True` says that is meant.
        `beside`: the migration chains of tables kept in the same database (the service's), applied after the
        store's own when it opens."""
        self._chains = (MIGRATIONS, *beside)
        self.url = as_url(url) if url is not None else default_store_url()
        self.attempts = attempts
        self.conflicts = 0  # changes `modify` had to re-apply because another writer saved first
        self._fence: Callable[[Connection], None] | None = None
        self.engine = create_store_engine(self.url, ephemeral)
        self.display_url = self.engine.url.render_as_string(hide_password=True)
        with self._errors():
            self._migrate()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Database faults (not a database, read-only, disk full, server gone) as one StoreError naming the store."""
        try:
            yield
        except IntegrityError:
            raise
        except DBAPIError as exc:
            reason = " ".join(str(exc.orig).split())[:300]
            raise StoreError(f"the profile store {self.display_url}: {reason}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"the profile store {self.display_url}: {' '.join(str(exc).split())[:300]}") from None
        except (OSError, ValueError) as exc:  # e.g. a stored JSON column that is not JSON
            raise StoreError(f"the profile store {self.display_url}: {exc}") from None

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def fenced(self, fence: Callable[[Connection], None]) -> ProfileStore:
        """This store (same engine; not to be closed on its own) running `fence` first in each write transaction:
        it raises to refuse the write (a job whose user was deleted), and what it locks stays locked until the write
        commits — the check and the write are one transaction."""
        view = copy.copy(self)
        view._fence = fence
        return view

    def erase_freed(self) -> bool:
        """After deleting data: leave no copy of it in the SQLite WAL (see `database.erase_freed`)."""
        with self._errors():
            return erase_freed(self.engine)

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- migrations ------------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self.transaction() as connection:
            if all(chain.is_current(connection) for chain in self._chains):
                return
        # The write lock serializes processes that open a fresh store at once; the second finds it migrated.
        with self.transaction(write=True) as connection:
            split_legacy_record(connection, VERSION_TABLE)
            for chain in self._chains:
                self._history(chain, chain.current(connection))  # a newer hyperalign's database: refused by name
                if not chain.is_current(connection):
                    chain.upgrade(connection)

    def keep_beside(self, chain: MigrationChain) -> None:
        """Keep the tables of another migration chain (the service's) in this store's database too, migrated now if
        they are behind; `beside=` at opening does the same."""
        if chain not in self._chains:
            self._chains = (*self._chains, chain)
            with self._errors():
                self._migrate()

    def applied_migrations(self) -> list[str]:
        """Names of the migrations this store's schema has been through, oldest first: the store's own, then
        those of the tables kept beside it (`chains`)."""
        return [name for names in self.applied_by_chain().values() for name in names]

    def applied_by_chain(self) -> dict[str, list[str]]:
        """The migrations each chain has applied, oldest first, by the package that ships it (the store's first)."""
        with self.transaction() as connection:
            current = [chain.current(connection) for chain in self._chains]
        return {chain.package: self._history(chain, heads) for chain, heads in zip(self._chains, current, strict=True)}

    def _history(self, chain: MigrationChain, heads: tuple[str, ...]) -> list[str]:
        from alembic.script.revision import RevisionError

        try:
            return chain.history(heads)
        except RevisionError:
            raise InputError(
                f"the profile store {self.display_url} is at schema revision {', '.join(heads)}, which this "
                "version of hyperalign does not know: it was written by a newer hyperalign"
            ) from None

    # --- transactions ----------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Connection]:
        """A transaction on the store's database (also for the tables kept beside the profiles: the service's)."""
        with self._errors(), self.engine.connect() as connection:
            if write:
                connection.execution_options(hyperalign_write=True)
            with connection.begin():
                if write and self._fence is not None:
                    self._fence(connection)
                yield connection

    # --- reading ---------------------------------------------------------------------------------------------

    def get(self, user_id: str, version: int | None = None) -> StoredProfile:
        """A user's profile at `version` (the current one by default); an InputError if there is none."""
        with self.transaction() as connection:
            current = self._current(connection, user_id)
            if current is None:
                raise self._not_found(user_id)
            version = current if version is None else version
            v = versions_table
            row = connection.execute(select(v).where(v.c.user_id == user_id, v.c.version == version)).mappings().first()
        if row is None:
            raise InputError(f"profile '{user_id}' has no version {version}; it has 1 to {current}")
        profile = Profile.from_json(row["profile"], source=f"profile store: '{user_id}' version {version}")
        return StoredProfile(profile, _info(row))

    def current_version(self, user_id: str) -> int | None:
        """The user's current version number, None without a profile."""
        with self.transaction() as connection:
            return self._current(connection, user_id)

    def current_stamp(self, user_id: str) -> tuple[int, datetime] | None:
        """The current version and when it was saved: together they name one saved state, even across a deletion
        and a new profile under the same id (what a cache of profiles may key on)."""
        p = profiles_table
        with self.transaction() as connection:
            row = connection.execute(select(p.c.current_version, p.c.updated_at).where(p.c.user_id == user_id)).first()
        return (row.current_version, as_utc(row.updated_at)) if row else None

    def history(self, user_id: str) -> list[VersionInfo]:
        """Every version of a user's profile, oldest first: when, who, what."""
        v = versions_table
        with self.transaction() as connection:
            rows = connection.execute(select(v).where(v.c.user_id == user_id).order_by(v.c.version)).mappings().all()
        if not rows:
            raise self._not_found(user_id)
        return [_info(row) for row in rows]

    def list_profiles(self) -> list[ProfileSummary]:
        """Every user with a profile, with their current version."""
        p, v = profiles_table, versions_table
        query = (
            select(p.c.user_id, p.c.current_version, p.c.updated_at, v.c.author, v.c.action, v.c.profile)
            .join(v, (v.c.user_id == p.c.user_id) & (v.c.version == p.c.current_version))
            .order_by(p.c.user_id)
        )
        with self.transaction() as connection:
            rows = connection.execute(query).all()
        return [
            ProfileSummary(row.user_id, row.current_version, as_utc(row.updated_at), row.author, row.action,
                           len(json.loads(row.profile).get("hypotheses", [])))
            for row in rows
        ]

    def _current(self, connection: Connection, user_id: str) -> int | None:
        return connection.execute(
            select(profiles_table.c.current_version).where(profiles_table.c.user_id == user_id)
        ).scalar_one_or_none()

    def _not_found(self, user_id: str) -> InputError:
        return InputError(f"no profile '{user_id}' in the store {self.display_url}")

    # --- writing ---------------------------------------------------------------------------------------------

    def save(self, profile: Profile, *, expected_version: int | None, author: str, action: str,
             message: str | None = None, details: dict[str, Any] | None = None) -> VersionInfo:
        """Store `profile` as the next version. `expected_version` is the version the change was based on
        (0: the profile must not exist yet); ConflictError if the stored profile is no longer at it.
        None appends on top of whatever is current — a deliberate overwrite, as an import is."""
        user_id = profile.user_id
        if not user_id.strip() or len(user_id) > MAX_USER_ID:
            raise InputError(f"a stored profile needs a user id of 1 to {MAX_USER_ID} characters, got {user_id!r}")
        check_name(author, "the author")
        if message is not None:
            check_text(message, "the message")
        if expected_version is None:
            for attempt in range(self.attempts):
                try:
                    current = self.current_version(user_id) or 0
                    return self.save(profile, expected_version=current, author=author, action=action,
                                     message=message, details=details)
                except ConflictError:
                    _backoff(attempt)
            raise ConflictError(f"profile '{user_id}' kept changing; gave up after {self.attempts} attempts")
        now, version = datetime.now(UTC), expected_version + 1
        try:
            with self.transaction(write=True) as connection:
                if expected_version == 0:
                    connection.execute(insert(profiles_table).values(
                        user_id=user_id, current_version=1, created_at=now, updated_at=now))
                else:
                    moved = connection.execute(
                        update(profiles_table)
                        .where(profiles_table.c.user_id == user_id, profiles_table.c.current_version == expected_version)
                        .values(current_version=version, updated_at=now)
                    ).rowcount
                    if moved != 1:
                        raise self._conflict(user_id, expected_version, self._current(connection, user_id))
                before = self._version(connection, user_id, expected_version) if expected_version else None
                connection.execute(insert(versions_table).values(
                    user_id=user_id, version=version, created_at=now, author=author, action=action,
                    message=message, details=json.dumps(details) if details else None,
                    profile=profile.model_dump_json(),
                ))
                self._note_rejections(connection, profile, before, version, author, action, now)
                statements.adjust(connection, user_id, before, profile)  # the generic mark's counts
        except IntegrityError:
            raise self._conflict(user_id, expected_version, self.current_version(user_id)) from None
        return VersionInfo(user_id, version, now, author, action, message, dict(details or {}))

    def _version(self, connection: Connection, user_id: str, version: int) -> Profile:
        v = versions_table
        row = connection.execute(select(v.c.profile).where(v.c.user_id == user_id, v.c.version == version))
        return Profile.from_json(row.scalar_one(), source=f"profile store: '{user_id}' version {version}")

    def _note_rejections(self, connection: Connection, profile: Profile, previous: Profile | None, version: int,
                         author: str, action: str, now: datetime) -> None:
        """In the save's transaction: a person's edit that drops hypotheses, facts or voice samples rejects them; a
        version that holds a rejected one again lifts its rejection."""
        r, user_id = rejections_table, profile.user_id
        dropped: list[Hypothesis | Fact | VoiceSample] = []
        if action == Action.EDIT and previous is not None:
            kept = {item.id for item in [*profile.statements, *profile.voice_samples]}
            dropped = [item for item in [*previous.statements, *previous.voice_samples] if item.id not in kept]
        if named := [item.id for item in [*profile.statements, *profile.voice_samples, *dropped]]:
            connection.execute(delete(r).where(r.c.user_id == user_id, r.c.hypothesis_id.in_(named)))
        if dropped:
            connection.execute(insert(r), [
                {"user_id": user_id, "hypothesis_id": item.id, "statement": said(item),
                 "hypothesis": item.model_dump_json(), "author": author, "version": version, "created_at": now}
                for item in dropped])

    def _conflict(self, user_id: str, expected: int, current: int | None) -> Exception:
        if current is None:
            return self._not_found(user_id)
        return ConflictError(f"profile '{user_id}' already exists (version {current})" if expected == 0 else
                             f"profile '{user_id}' changed while this change was being made: it was based on "
                             f"version {expected}, the store has version {current}")

    def modify(self, user_id: str, change: Callable[[Profile], Profile | Change | None], *, author: str, action: str,
               message: str | None = None) -> VersionInfo | None:
        """Read the current profile, apply `change` to a copy, save it as the next version; if another writer
        got there first, start over from what it wrote. `change` must therefore be safe to call again, and
        returns None (or the profile unchanged) for "nothing to save", which returns None here."""
        for attempt in range(self.attempts):
            current = self.get(user_id)
            result = change(current.profile.model_copy(deep=True))
            if result is None:
                return None
            revision = result if isinstance(result, Change) else Change(result)
            if revision.profile.model_dump() == current.profile.model_dump():
                return None
            try:
                return self.save(
                    revision.profile, expected_version=current.version, author=author, action=action,
                    message=revision.message or message, details=revision.details,
                )
            except ConflictError:
                self.conflicts += 1
                _backoff(attempt)
        raise ConflictError(f"profile '{user_id}' kept changing; gave up after {self.attempts} attempts")

    def delete(self, user_id: str, connection: Connection) -> int:
        """Every version of the profile and what the person deleted from it, inside the caller's write transaction;
        the number of versions removed."""
        if (current := self._current(connection, user_id)) is not None:
            statements.adjust(connection, user_id, self._version(connection, user_id, current), None)
        connection.execute(delete(rejections_table).where(rejections_table.c.user_id == user_id))
        removed = connection.execute(delete(versions_table).where(versions_table.c.user_id == user_id)).rowcount
        connection.execute(delete(profiles_table).where(profiles_table.c.user_id == user_id))
        return int(removed or 0)

    def retired_ids(self, user_id: str) -> set[str]:
        """Ids of hypotheses that automated updates retired at some point."""
        v = versions_table
        with self.transaction() as connection:
            rows = connection.execute(select(v.c.details).where(v.c.user_id == user_id, v.c.details.is_not(None)))
            return {hid for details in rows.scalars() for hid in json.loads(details).get("retired", [])}


def _info(row: Any) -> VersionInfo:
    return VersionInfo(
        user_id=row["user_id"], version=row["version"], created_at=as_utc(row["created_at"]), author=row["author"],
        action=row["action"], message=row["message"], details=json.loads(row["details"]) if row["details"] else {},
    )
