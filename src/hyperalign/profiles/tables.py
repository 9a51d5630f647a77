"""The store's tables (alembic's migrations in store_migrations/ create and change them): one row per profile with
its current version, every version in full, and what a person deleted."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text, UniqueConstraint

from ..migration_chain import MigrationChain

# Distinct from alembic's default so the store can share a database that already uses alembic for itself.
VERSION_TABLE = "profile_store_version"
MAX_USER_ID = 200

# Named constraints: later migrations can then alter them (SQLite batch mode needs the names).
metadata = MetaData(naming_convention={
    "pk": "pk_%(table_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s", "ix": "ix_%(table_name)s_%(column_0_N_name)s",
})

profiles_table = Table(
    "profiles", metadata,
    Column("user_id", String(MAX_USER_ID), primary_key=True),
    # The compare-and-swap target: a save moves it from N to N+1 only if it still reads N.
    Column("current_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

versions_table = Table(
    "profile_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(MAX_USER_ID), ForeignKey("profiles.user_id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("author", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("message", Text, nullable=True),
    Column("details", Text, nullable=True),  # JSON: what an automated change did, e.g. the ids it retired
    Column("profile", Text, nullable=False),  # the whole profile: any two versions can be shown and diffed
    # The last line of defence: whatever slips past the version check, two writers cannot both create N+1.
    UniqueConstraint("user_id", "version"),
)

# What a person deleted from their profile: kept so that no automated update brings it back, and so it can be
# restored as it was. Deleted with the profile (and with the user).
rejections_table = Table(
    "hypothesis_rejections", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(MAX_USER_ID), ForeignKey("profiles.user_id", ondelete="CASCADE"), nullable=False),
    Column("hypothesis_id", String(64), nullable=False),
    Column("statement", Text, nullable=False),
    Column("hypothesis", Text, nullable=False),  # JSON: the hypothesis as it was when deleted, for restoring it
    Column("author", String(200), nullable=False),
    Column("version", Integer, nullable=False),  # the version that deleted it
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "hypothesis_id"),
)

# The store's own migrations (store_migrations/): these tables and the statement counts (statements.py).
MIGRATIONS = MigrationChain("hyperalign.profiles", "store_migrations", VERSION_TABLE, metadata)
