"""Alembic environment for the profile store. `ProfileStore` hands over its connection, already inside a
transaction that holds the write lock, so the migration commits (or not) together with that transaction."""

from hyperalign.migration_chain import run_environment
from hyperalign.profiles.database import as_url
from hyperalign.profiles.tables import MIGRATIONS

run_environment(MIGRATIONS, as_url)
