"""Every completion, logged to SQLite and reused: a second identical run makes no LLM call.

Key policy (what is in the key, and why) — the key is a SHA-256 over a canonical JSON of:
- `policy`: the key format's version, so a change of policy never serves an answer under the wrong key;
- the backend's identity (`backend_identity`): its name and model, and what the backend itself adds that changes
  the answer — for `openai` the endpoint's base URL (without credentials) and for `embedded` the model file's
  content fingerprint (size + SHA-256 of its first and last MiB: a renamed or moved copy is the same model, a
  re-quantized file with the same name is not), the context size, repeat penalty and DRY multiplier, and — in the
  key of a request that carries steering biases only — the version of its text-to-token mapping;
- the whole request: messages, max_tokens, temperature, seed, the JSON schema (the grammar) and its name, the
  requested log-probabilities; the steering biases and the prefill only when set (`KEYED_WHEN_SET`: added
  later, so answers cached before them keep their keys).
Never in the key or the stored rows: the API key or any credential in a URL. Not in the key on purpose: the
concurrency, retries and thread count (they change how fast an answer comes, not which).

A cache that cannot be opened (not a database, a directory, unreadable) is refused before any LLM call. A write
that fails later (disk full, read-only) is logged and skipped: the finished completion is returned all the same,
never thrown away. The schema evolves through alembic's migrations (cache_migrations/), applied when it opens."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..errors import StoreError
from ..migration_chain import MigrationChain
from .base import Completion, CompletionRequest, TokenLogprobs, Usage

log = logging.getLogger(__name__)
VERSION_TABLE = "completion_cache_version"
MIGRATIONS = MigrationChain("hyperalign.llm", "cache_migrations", VERSION_TABLE)

# A cache made before alembic recorded its migrations by these names in its own table `_migrations`.
_LEGACY_REVISIONS = {"m001_completions": "0001_completions", "m002_completions_created_at_index": "0002_created_at_index",
                     "m003_completions_logprobs": "0003_logprobs"}
_LOGPROBS = TypeAdapter(list[TokenLogprobs])


def default_cache_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hyperalign" / "llm-cache.sqlite3"


class CompletionCache:
    def __init__(self, path: Path):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._write_failed = False
        if self.path.is_dir():
            raise self._refuse("it is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection shared by worker threads (async calls run backends in threads); the lock serializes it.
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._refuse(str(exc)) from None
        try:
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(completions)")}
            if "response" not in columns:
                raise sqlite3.DatabaseError("it holds a table 'completions' that is not hyperalign's")
        except sqlite3.Error as exc:
            self._db.close()
            raise self._refuse(str(exc)) from None
        except StoreError:
            self._db.close()
            raise

    def _refuse(self, reason: str) -> StoreError:
        return StoreError(
            f"cannot use the completion cache {self.path}: {reason}; use another cache file or none (the cache "
            "and no_cache settings)")

    def _migrate(self) -> None:
        """Alembic, in one transaction that holds SQLite's write lock (a second process opening a new cache waits,
        then finds it migrated); a cache from before alembic is first stamped at the revision its record names."""
        if tuple(self.applied_migrations()[-1:]) == MIGRATIONS.heads():
            return
        engine = create_engine(f"sqlite:///{self.path}", poolclass=NullPool, connect_args={"timeout": 10})
        event.listen(engine, "connect", lambda dbapi, _: setattr(dbapi, "isolation_level", None))
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
        try:
            with engine.begin() as connection:
                if not MIGRATIONS.current(connection):
                    tables = set(inspect(connection).get_table_names())
                    if "_migrations" in tables:
                        done = {row[0] for row in connection.exec_driver_sql("SELECT name FROM _migrations")}
                        legacy = [revision for name, revision in _LEGACY_REVISIONS.items() if name in done]
                        if legacy:
                            MIGRATIONS.stamp(connection, legacy[-1])
                    elif "completions" in tables:
                        raise sqlite3.DatabaseError("it holds a table 'completions' that is not hyperalign's")
                MIGRATIONS.upgrade(connection)
        except SQLAlchemyError as exc:
            raise sqlite3.DatabaseError(" ".join(str(exc).split())[:200]) from None
        finally:
            engine.dispose()

    def applied_migrations(self) -> list[str]:
        """The revisions this cache's schema has been through, oldest first."""
        from alembic.script.revision import RevisionError

        with self._lock:
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            current = ([row[0] for row in self._db.execute(f"SELECT version_num FROM {VERSION_TABLE}")]
                       if VERSION_TABLE in tables else [])
        try:
            return MIGRATIONS.history(current)
        except RevisionError:
            raise self._refuse(f"its schema is at revision {current[0]}, which this version of hyperalign does not "
                               "know (it was written by a newer one)") from None

    def get(self, key: str) -> Completion | None:
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT response, finish_reason, prompt_tokens, completion_tokens, model, logprobs, request, "
                    "cached_prompt_tokens "
                    "FROM completions WHERE key=?", (key,),
                ).fetchone()
        except sqlite3.Error as exc:  # a read fault costs a call, never the run
            log.warning("completion cache %s could not be read (%s); calling the model", self.path, exc)
            return None
        if row is None:
            return None
        try:
            logprobs = _LOGPROBS.validate_json(row[5]) if row[5] is not None else None
            # Stored before m003 (or by a backend that sent none): an answer to a request that asked for
            # log-probabilities, without them, is asked again rather than served half.
            if logprobs is None and json.loads(row[6]).get("top_logprobs"):
                return None
        except ValueError:  # a damaged row costs a call
            return None
        return Completion(
            text=row[0],
            finish_reason=row[1],
            usage=Usage(prompt_tokens=row[2], completion_tokens=row[3], cached_prompt_tokens=row[7]),
            model=row[4],
            cached=True,
            logprobs=logprobs,
        )

    def put(self, key: str, backend: str, request: CompletionRequest, completion: Completion) -> bool:
        """Store a completion; False (logged once) when the cache cannot be written: the caller keeps its result."""
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO completions (key, backend, model, request, response, finish_reason, "
                    "prompt_tokens, completion_tokens, created_at, logprobs, cached_prompt_tokens) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        backend,
                        completion.model,
                        json.dumps(request.model_dump(), ensure_ascii=False),
                        completion.text,
                        completion.finish_reason,
                        completion.usage.prompt_tokens,
                        completion.usage.completion_tokens,
                        _now(),
                        _LOGPROBS.dump_json(completion.logprobs).decode() if completion.logprobs is not None else None,
                        completion.usage.cached_prompt_tokens,
                    ),
                )
            return True
        except (sqlite3.Error, UnicodeError) as exc:
            if not self._write_failed:
                self._write_failed = True
                log.warning("completion cache %s cannot be written (%s); results are kept but not cached", self.path, exc)
            return False

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()
