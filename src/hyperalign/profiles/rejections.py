"""What a person deleted from their profile: read back (for the review page, the export and automated updates, which
never infer it again) and restored as it was. The store records a rejection in the same transaction as the person's
edit that drops the hypothesis, and lifts it when a version holds the hypothesis again (store.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..errors import InputError
from .database import as_utc
from .model import Hypothesis
from .store import Action, ProfileStore, VersionInfo, rejections_table


@dataclass(frozen=True)
class Rejection:
    hypothesis: Hypothesis  # as it was when the person deleted it
    author: str
    version: int  # the version that deleted it
    created_at: datetime


def rejections(store: ProfileStore, user_id: str) -> list[Rejection]:
    """The hypotheses the person deleted and has not restored, oldest first."""
    r = rejections_table
    with store.transaction() as connection:
        rows = connection.execute(select(r).where(r.c.user_id == user_id).order_by(r.c.id)).mappings().all()
    return [Rejection(Hypothesis.model_validate_json(row["hypothesis"]), row["author"], row["version"],
                      as_utc(row["created_at"])) for row in rows]


def restore(store: ProfileStore, user_id: str, hypothesis_id: str, *, author: str) -> VersionInfo | None:
    """Bring back a hypothesis the person deleted, as it was: a new version (an edit), which lifts the rejection."""
    found = next((r.hypothesis for r in rejections(store, user_id) if r.hypothesis.id == hypothesis_id), None)
    if found is None:
        raise InputError(f"profile '{user_id}' has no deleted hypothesis {hypothesis_id}")
    return store.modify(user_id, lambda p: None if any(h.id == found.id for h in p.hypotheses) else
                        p.model_copy(update={"hypotheses": [*p.hypotheses, found]}),
                        author=author, action=Action.EDIT, message=f"restore {hypothesis_id}")
