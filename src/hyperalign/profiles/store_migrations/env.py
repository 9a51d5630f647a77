"""Alembic environment for the profile store. `ProfileStore` hands over its connection, already inside a
transaction that holds the write lock, so the migration commits (or not) together with that transaction."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from hyperalign.profiles.store import as_url
from hyperalign.profiles.tables import VERSION_TABLE, metadata

config = context.config


def _options() -> dict:
    # Batch mode: SQLite cannot ALTER most things in place; alembic then copies the table instead.
    return {"target_metadata": metadata, "version_table": VERSION_TABLE, "render_as_batch": True}


def _url() -> str:
    # From the alembic command line: `-x url=...` (a SQLAlchemy URL or a file path), else sqlalchemy.url.
    given = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not given:
        raise SystemExit("give the store with -x url=URL_OR_PATH")
    return as_url(given)


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True, **_options())
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **_options())
        with context.begin_transaction():
            context.run_migrations()
    else:
        with create_engine(_url()).connect() as connection:
            context.configure(connection=connection, **_options())
            with context.begin_transaction():
                context.run_migrations()
