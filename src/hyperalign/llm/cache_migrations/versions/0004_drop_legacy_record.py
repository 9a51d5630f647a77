"""0004_drop_legacy_record: the cache's own migration record from before alembic (`_migrations`), no longer read."""

from __future__ import annotations

from alembic import op

revision = "0004_drop_legacy_record"
down_revision = "0003_logprobs"


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS _migrations")


def downgrade() -> None:
    pass
