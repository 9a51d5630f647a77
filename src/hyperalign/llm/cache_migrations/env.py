"""Alembic environment for the completion cache: `CompletionCache` hands over a connection inside a transaction that
holds SQLite's write lock, so two processes opening a new cache at once migrate it once."""

from __future__ import annotations

from alembic import context

from hyperalign.llm.cache import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
