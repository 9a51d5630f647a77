"""0005_idempotency: the answers to POST requests that carried an Idempotency-Key, per tenant, until they expire: a
retried request gets the first answer instead of doing its work twice (service/idempotency.py)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_idempotency"
down_revision = "0002_service"


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("user_key", sa.String(200), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_index("ix_idempotency_keys_user_key", "idempotency_keys", ["user_key"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_user_key", "idempotency_keys")
    op.drop_index("ix_idempotency_keys_expires_at", "idempotency_keys")
    op.drop_table("idempotency_keys")
