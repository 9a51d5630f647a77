"""0004_statement_counts: how many profiles of each scope (a tenant) hold each canonical statement — the statistic
behind the generic mark (profiles/statements.py). Kept in the transaction of every save and deletion; counts and
keys only, no text. Existing profiles are counted when this migration runs."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_statement_counts"
down_revision = "0003_rejections"


def upgrade() -> None:
    op.create_table(
        "statement_counts",
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("statement_key", sa.String(400), nullable=False),
        sa.Column("profiles", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "statement_key", name="pk_statement_counts"),
    )
    from hyperalign.profiles.statements import recount

    recount(op.get_bind())


def downgrade() -> None:
    op.drop_table("statement_counts")
