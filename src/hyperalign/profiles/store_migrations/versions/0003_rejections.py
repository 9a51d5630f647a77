"""0003_rejections: the hypotheses a person deleted from their profile, kept so that no automated update infers them
again and so that the person can restore them as they were. Deleted with the profile."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_rejections"
down_revision = "0001_profiles"


def upgrade() -> None:
    op.create_table(
        "hypothesis_rejections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("hypothesis_id", sa.String(64), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hypothesis_rejections"),
        sa.ForeignKeyConstraint(["user_id"], ["profiles.user_id"], name="fk_hypothesis_rejections_user_id_profiles",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("user_id", "hypothesis_id", name="uq_hypothesis_rejections_user_id_hypothesis_id"),
    )


def downgrade() -> None:
    op.drop_table("hypothesis_rejections")
