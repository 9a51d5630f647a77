"""Before 0.1.0 a single alembic chain, in the profile store's folder, migrated the store's tables and the service's
alike (0001_profiles, 0002_service, 0003_rejections, 0004_statement_counts, then 0005 to 0008 for the service). The
service's revisions now form a chain of their own (service/migrations) with its own version table, so that a store
the CLI opens never needs to know them. A database migrated before that split records a single revision of the old
chain in the store's version table; `split_legacy_record` rewrites that record as the two chains' positions. It
changes bookkeeping only, never a table's data, and runs inside the store's migration transaction."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy.engine import Connection

# The service chain's version table (service/tables.py takes the name from here: this split must write into it).
SERVICE_VERSION_TABLE = "service_schema_version"

# Each revision the old chain could stand at → (the store chain's revision, the service chain's revision) then.
_OLD_CHAIN: dict[str, tuple[str, str]] = {
    "0002_service": ("0001_profiles", "0002_service"),
    "0003_rejections": ("0003_rejections", "0002_service"),
    "0004_statement_counts": ("0004_statement_counts", "0002_service"),
    "0005_idempotency": ("0004_statement_counts", "0005_idempotency"),
    "0006_review_links": ("0004_statement_counts", "0006_review_links"),
    "0007_webhooks": ("0004_statement_counts", "0007_webhooks"),
    "0008_user_token_usage": ("0004_statement_counts", "0008_user_token_usage"),
}


def _version_table(name: str) -> Table:
    # As alembic makes its version tables, so that alembic reads and updates this one as its own.
    return Table(name, MetaData(), Column("version_num", String(32), nullable=False),
                 PrimaryKeyConstraint("version_num", name=f"{name}_pkc"))


def split_legacy_record(connection: Connection, store_version_table: str) -> bool:
    """Rewrite an old single-chain record as the store's and the service's; True if there was one to rewrite.
    0003 and 0004 stand in both chains' histories, so a record of either is old only when the database has the
    service's tables (every database that went through the old chain's 0002 does) and no service record yet."""
    tables = set(inspect(connection).get_table_names())
    if store_version_table not in tables or SERVICE_VERSION_TABLE in tables or "tenants" not in tables:
        return False
    store = _version_table(store_version_table)
    recorded = list(connection.execute(select(store.c.version_num)).scalars())
    if len(recorded) != 1 or recorded[0] not in _OLD_CHAIN:
        return False
    store_revision, service_revision = _OLD_CHAIN[recorded[0]]
    service = _version_table(SERVICE_VERSION_TABLE)
    service.create(connection)
    connection.execute(service.insert().values(version_num=service_revision))
    connection.execute(store.update().values(version_num=store_revision))
    return True
