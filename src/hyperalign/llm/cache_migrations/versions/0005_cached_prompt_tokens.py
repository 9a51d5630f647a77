"""0005_cached_prompt_tokens: of a completion's prompt tokens, those the backend reused from its prefix cache, so a
cache hit reports the same computed prompt as the call it replays (rows from before it: 0, "not said")."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cached_prompt_tokens"
down_revision = "0004_drop_legacy_record"


def upgrade() -> None:
    op.add_column("completions", sa.Column("cached_prompt_tokens", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("completions") as batch:
        batch.drop_column("cached_prompt_tokens")
