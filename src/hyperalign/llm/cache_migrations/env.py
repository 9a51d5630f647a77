"""Alembic environment for the completion cache: `CompletionCache` hands over a connection inside a transaction that
holds SQLite's write lock, so two processes opening a new cache at once migrate it once."""

from hyperalign.llm.cache import MIGRATIONS
from hyperalign.migration_chain import run_environment

run_environment(MIGRATIONS)
