"""0003_logprobs: the output tokens' top log-probabilities (JSON), for requests that asked: the label-probability
judges read them, so a cached answer without them would be no answer."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_logprobs"
down_revision = "0002_created_at_index"


def upgrade() -> None:
    op.add_column("completions", sa.Column("logprobs", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("completions") as batch:
        batch.drop_column("logprobs")
