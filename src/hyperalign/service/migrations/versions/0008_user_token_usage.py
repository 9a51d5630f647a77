"""0008_user_token_usage: the tokens each end user's chat requests used, per UTC day — what the per-user token budget
(`user_tokens_per_day`) is checked against, shared by every replica and kept across restarts
(service/budgets.py). Counts only; deleted with the user."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_user_token_usage"
down_revision = "0007_webhooks"


def upgrade() -> None:
    op.create_table(
        "user_token_usage",
        sa.Column("user_key", sa.String(200), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_key", "day", name="pk_user_token_usage"),
    )


def downgrade() -> None:
    op.drop_table("user_token_usage")
