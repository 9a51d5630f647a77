"""Every completion, logged to SQLite and reused: a second identical run makes no LLM call.

Keyed by a hash of backend, model, messages and parameters. The schema evolves through named migrations,
applied in order and recorded in the `_migrations` table."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from .base import Completion, CompletionRequest, Usage

MIGRATIONS: list[tuple[str, str]] = [
    (
        "m001_completions",
        """
        CREATE TABLE completions (
            key TEXT PRIMARY KEY,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            request TEXT NOT NULL,
            response TEXT NOT NULL,
            finish_reason TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
    ),
    ("m002_completions_created_at_index", "CREATE INDEX completions_created_at ON completions (created_at)"),
]


def default_cache_path() -> Path:
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "hyperalign" / "llm-cache.sqlite3"


class CompletionCache:
    def __init__(self, path: Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by worker threads (async calls run backends in threads); the lock serializes it.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._lock = threading.Lock()
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            done = {row[0] for row in self._db.execute("SELECT name FROM _migrations")}
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    # Another process may have applied it between our read and our lock.
                    if not self._db.execute("SELECT 1 FROM _migrations WHERE name=?", (name,)).fetchone():
                        self._db.execute(sql)
                        self._db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, _now()))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def applied_migrations(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT name FROM _migrations ORDER BY name")]

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response, finish_reason, prompt_tokens, completion_tokens, model FROM completions WHERE key=?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return Completion(
            text=row[0],
            finish_reason=row[1],
            usage=Usage(prompt_tokens=row[2], completion_tokens=row[3]),
            model=row[4],
            cached=True,
        )

    def put(self, key: str, backend: str, request: CompletionRequest, completion: Completion) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
