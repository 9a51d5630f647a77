"""0001_completions: every completion, keyed by the cache key (its policy: llm/cache.py)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_completions"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "completions",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("backend", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("finish_reason", sa.Text(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("completions")
