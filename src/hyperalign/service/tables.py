"""The service's tables, as its own migration chain (service/migrations) creates them, in the profile store's
database; profiles, their versions and the statement counts are the store's (profiles/tables.py). Every part of the
service opens its database with `open_service_store`, which applies both chains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text

from ..migration_chain import MigrationChain
from ..profiles.legacy_chain import SERVICE_VERSION_TABLE
from ..profiles.store import MAX_USER_ID, ProfileStore

metadata = MetaData()

tenants = Table(
    "tenants", metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("strategy", String(40), nullable=False),  # how this tenant's requests are personalized by default
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(40), primary_key=True),  # the key's public part, shown in listings
    Column("tenant_id", String(40), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", String(64), nullable=False),  # SHA-256 of the secret part; the secret itself is never kept
    Column("name", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# An end user's texts. `user_key` is the tenant-scoped key that also names the user's profile in the store.
user_examples = Table(
    "user_examples", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_key", String(MAX_USER_ID), nullable=False, index=True),
    Column("prompt", Text, nullable=True),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

jobs = Table(
    "jobs", metadata,
    Column("id", String(40), primary_key=True),
    Column("user_key", String(MAX_USER_ID), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("worker", String(100), nullable=True),
    Column("error", Text, nullable=True),
    Column("result_version", Integer, nullable=True),
    # The last example (user_examples.id) a finished job took in: the next job starts after it.
    Column("examples_through", Integer, nullable=True),
)

service_secrets = Table(
    "service_secrets", metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(200), nullable=False),
)

# The first answer to a POST that carried an Idempotency-Key (migration 0005): replayed to a retry with the same key
# and request, until `expires_at`. `user_key`: the user the answer is about, so that deleting the user deletes it.
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the method, path and body
    Column("user_key", String(MAX_USER_ID), nullable=True, index=True),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# Review links (migration 0006): the token itself is only in the link; here its SHA-256, whose user it opens, until when.
review_links = Table(
    "review_links", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("user_key", String(MAX_USER_ID), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# Webhooks (migration 0007): a tenant's endpoints, its signing secret, and every delivery attempt. A delivery names
# the user its event is about (`user_key`), so that deleting the user deletes it.
webhooks = Table(
    "webhooks", metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("description", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_secrets = Table(
    "webhook_secrets", metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("secret", String(100), nullable=False),  # "whsec_" + base64, as Standard Webhooks (Svix) write it
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=False, index=True),
    Column("webhook_id", String(40), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("user_key", String(MAX_USER_ID), nullable=True, index=True),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),  # the receiver's answer; None when none came
    Column("error", String(500), nullable=True),
    Column("delivered", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Tokens each end user's chat requests used per UTC day (migration 0008): the per-user token budget's count.
user_token_usage = Table(
    "user_token_usage", metadata,
    Column("user_key", String(MAX_USER_ID), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("tokens", BigInteger, nullable=False),
)


MIGRATIONS = MigrationChain("hyperalign.service", "migrations", SERVICE_VERSION_TABLE, metadata)


def open_service_store(url: str | Path | None = None, **options: Any) -> ProfileStore:
    """The profile store at `url` with the service's tables beside it, both chains migrated (`ProfileStore`'s
    options pass through)."""
    return ProfileStore(url, beside=[MIGRATIONS], **options)
