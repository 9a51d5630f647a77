"""0002_created_at_index: completions by age, for pruning."""

from __future__ import annotations

from alembic import op

revision = "0002_created_at_index"
down_revision = "0001_completions"


def upgrade() -> None:
    op.create_index("completions_created_at", "completions", ["created_at"])


def downgrade() -> None:
    op.drop_index("completions_created_at", table_name="completions")
