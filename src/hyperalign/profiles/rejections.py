"""What a person deleted from their profile — a hypothesis, a measured fact or a voice sample (a sentence of their own
the generator was shown): read back (for the review page, the export and automated updates, which never infer it
again) and restored as it was. The store records a rejection in the same transaction as the person's edit that drops
the item, and lifts it when a version holds the item again (store.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..errors import InputError
from .database import as_utc
from .model import Fact, Hypothesis, Profile, VoiceSample, said
from .statements import canonical
from .store import Action, ProfileStore, VersionInfo
from .tables import rejections_table


@dataclass(frozen=True)
class Rejection:
    hypothesis: Hypothesis | Fact | VoiceSample  # as it was when the person deleted it
    author: str
    version: int  # the version that deleted it
    created_at: datetime


def rejections(store: ProfileStore, user_id: str) -> list[Rejection]:
    """The hypotheses the person deleted and has not restored, oldest first."""
    r = rejections_table
    with store.transaction() as connection:
        rows = connection.execute(select(r).where(r.c.user_id == user_id).order_by(r.c.id)).mappings().all()
    return [Rejection(_item(row["hypothesis"]), row["author"], row["version"], as_utc(row["created_at"]))
            for row in rows]


def rejected_keys(rejected: list[Rejection]) -> tuple[set[str], set[str]]:
    """What identifies a deleted item, so that nothing automated brings it back: its id, and its statement once
    canonical (the same statement under a new id)."""
    return {r.hypothesis.id for r in rejected}, {canonical(said(r.hypothesis)) for r in rejected}


def without_rejected(profile: Profile, rejected: list[Rejection]) -> Profile:
    """The profile less what the person deleted (`rejected_keys`): what an inference from scratch must not bring
    back."""
    ids, deleted = rejected_keys(rejected)

    def kept(item: Hypothesis | Fact | VoiceSample) -> bool:
        return item.id not in ids and canonical(said(item)) not in deleted

    return profile.model_copy(update={"hypotheses": [h for h in profile.hypotheses if kept(h)],
                                      "facts": [f for f in profile.facts if kept(f)],
                                      "voice_samples": [v for v in profile.voice_samples if kept(v)]})


def _item(document: str) -> Hypothesis | Fact | VoiceSample:
    """A rejected item as stored: a voice sample (a sentence, no statement), a fact (it has a measure; also a
    hypothesis-shaped fact recorded before facts were their own type) or a hypothesis."""
    data = json.loads(document)
    if "statement" not in data and "text" in data:
        return VoiceSample.model_validate(data)
    if data.get("measure") is not None:
        return Fact.model_validate({k: data[k] for k in ("id", "statement", "measure", "evidence", "pinned")
                                    if k in data} | {"origin": "person" if data.get("origin") == "person" else
                                                     "measured"})
    return Hypothesis.model_validate({k: v for k, v in data.items() if k != "measure"}
                                     | ({"origin": "inferred"} if data.get("origin") == "measured" else {}))


def restore(store: ProfileStore, user_id: str, hypothesis_id: str, *, author: str) -> VersionInfo | None:
    """Bring back a hypothesis, fact or voice sample the person deleted, as it was: a new version (an edit), which
    lifts the rejection."""
    found = next((r.hypothesis for r in rejections(store, user_id) if r.hypothesis.id == hypothesis_id), None)
    if found is None:
        raise InputError(f"profile '{user_id}' has no deleted hypothesis {hypothesis_id}")
    def put_back(profile: Profile) -> Profile | None:
        if any(item.id == found.id for item in [*profile.statements, *profile.voice_samples]):
            return None
        if isinstance(found, VoiceSample):
            return profile.model_copy(update={"voice_samples": [*profile.voice_samples, found]})
        if isinstance(found, Fact):
            return profile.model_copy(update={"facts": [*profile.facts, found]})
        return profile.model_copy(update={"hypotheses": [*profile.hypotheses, found]})

    return store.modify(user_id, put_back, author=author, action=Action.EDIT, message=f"restore {hypothesis_id}")
