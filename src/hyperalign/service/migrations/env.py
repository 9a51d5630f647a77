"""Alembic environment for the service's tables: `ProfileStore` hands over its connection inside the transaction
that holds the write lock, after the store's own chain has run in it."""

from hyperalign.migration_chain import run_environment
from hyperalign.profiles.database import as_url
from hyperalign.service.tables import MIGRATIONS

run_environment(MIGRATIONS, as_url)
