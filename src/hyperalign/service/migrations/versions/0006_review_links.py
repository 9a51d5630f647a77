"""0006_review_links: the review links a tenant asked for, each an opaque random token kept only as its SHA-256, with
its user and expiry: the link says nothing about who it is for, and a user's links can be revoked at once (or go
with the user when they are deleted). Links made before this migration (signed tokens) stop working."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_review_links"
down_revision = "0005_idempotency"


def upgrade() -> None:
    op.create_table(
        "review_links",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("user_key", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_review_links"),
    )
    op.create_index("ix_review_links_user_key", "review_links", ["user_key"])
    op.create_index("ix_review_links_expires_at", "review_links", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_review_links_expires_at", "review_links")
    op.drop_index("ix_review_links_user_key", "review_links")
    op.drop_table("review_links")
