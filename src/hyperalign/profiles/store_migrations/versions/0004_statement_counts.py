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
    from hyperalign.profiles.model import Profile
    from hyperalign.profiles.statements import adjust

    connection = op.get_bind()
    current = connection.execute(sa.text(
        "SELECT v.user_id, v.profile FROM profile_versions v JOIN profiles p "
        "ON p.user_id = v.user_id AND p.current_version = v.version"))
    for user_id, document in current.fetchall():
        adjust(connection, user_id, None, Profile.from_json(document, source=f"profile store: '{user_id}'"))


def downgrade() -> None:
    op.drop_table("statement_counts")
