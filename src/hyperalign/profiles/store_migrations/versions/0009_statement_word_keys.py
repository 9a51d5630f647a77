"""0009_statement_word_keys: statements are counted by their stemmed words, and each word on its own too, so that
the generic mark sees one trait in many wordings (profiles/statements.py, pipeline/generic.py). A key's meaning
changes, not the table: every current profile is counted afresh."""

from __future__ import annotations

from alembic import op

revision = "0009_statement_word_keys"
down_revision = "0004_statement_counts"


def upgrade() -> None:
    from hyperalign.profiles.statements import recount

    recount(op.get_bind())


def downgrade() -> None:
    # The earlier keys cannot be rebuilt by this code (their function is gone): the counts are emptied, and the
    # generic mark reads "shared by no one" until the profiles are saved again under the earlier release.
    op.execute("DELETE FROM statement_counts")
