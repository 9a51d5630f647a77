"""The merge half of an incremental update: what the LLM work on new texts found (`Findings`, from pipeline/update.py)
applied to whatever version of the stored profile is current when it is saved.

1. Rescore: the counts the new texts gave each hypothesis add to those it already has.
2. Add: new candidate hypotheses, except ones the profile already holds, that an earlier update retired, or that the
   person deleted (by id or by canonical statement).
3. Retire: an inferred, unpinned hypothesis rated at least `min_ratings` times whose score (Wilson lower bound of
   support) is below `retire_below` leaves the active profile; older versions keep it.

The merge is re-applied on every attempt to save, so a person's edit made during the LLM work is kept, and a
hypothesis the person reworded meanwhile does not receive counts that rated the old wording."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..usage import Usage
from .edit import with_their_measures
from .model import (
    Fact,
    Hypothesis,
    HypothesisScore,
    InferenceReport,
    Profile,
    UserExample,
    VoiceSample,
    WordUse,
    examples_hash,
    wilson_lower_bound,
)
from .rejections import rejected_keys, rejections
from .statements import canonical
from .store import Action, Change, ProfileStore, VersionInfo

AUTOMATED_AUTHOR = "hyperalign"
# The profile's facts and the rejected fact ids -> its facts after the new texts (pipeline/update.py's blend).
FactsMerge = Callable[[Profile, set[str]], list[Fact]]
# The profile -> its voice samples after the new texts (pipeline/update.py: chosen again among those it keeps and the
# new texts' sentences).
SamplesMerge = Callable[[Profile], list[VoiceSample]]
# The profile -> its word use after the new texts (pipeline/word_use.py's blend).
WordUseMerge = Callable[[Profile], WordUse | None]


@dataclass
class UpdateResult:
    """The profile after an update, the version saved (None: nothing changed) and what changed, by id."""

    profile: Profile
    version: VersionInfo | None  # None: nothing changed, no version saved
    rescored: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


@dataclass
class Findings:
    """What the LLM work found, in a form that can be merged into any later version of the profile."""

    deltas: dict[str, tuple[str, HypothesisScore]]  # id -> (the statement rated, the counts the new texts added)
    candidates: list[Hypothesis]
    usage: Usage  # every call of the update
    inferred: InferenceReport | None
    examples: list[UserExample]
    skip: set[str]
    retire_below: float = 0.1
    min_ratings: int = 3
    facts: FactsMerge | None = None
    samples: SamplesMerge | None = None
    word_use: WordUseMerge | None = None
    # What the person deleted (rejections.py), read again for each attempt to save: never added back.
    rejected_ids: set[str] = field(default_factory=set)
    rejected_statements: set[str] = field(default_factory=set)


def retirable(h: Hypothesis, retire_below: float, min_ratings: int) -> bool:
    if h.pinned or h.origin == "person" or h.score is None:
        return False
    # Clamped: with no support the Wilson bound can come out a rounding error below zero.
    return h.score.tested >= min_ratings and max(0.0, h.score.value) < retire_below


def save_update(store: ProfileStore, user_id: str, findings: Findings, *, author: str = AUTOMATED_AUTHOR,
                message: str | None = None) -> UpdateResult:
    """Merge `findings` into the current version and save it (re-applied if another writer got there first)."""
    merged: list[tuple[Change, dict[str, list[str]]]] = []

    def merge(profile: Profile) -> Change:
        # Re-read on every attempt: a deletion made during the LLM work moved the version, so this runs again.
        findings.rejected_ids, findings.rejected_statements = rejected_keys(rejections(store, user_id))
        merged[:] = [merge_findings(profile, findings, message)]  # the last attempt is the one saved
        return merged[0][0]

    version = store.modify(user_id, merge, author=author, action=Action.UPDATE)
    if version is None:
        return UpdateResult(profile=store.get(user_id).profile, version=None)
    change, lists = merged[0]
    return UpdateResult(profile=change.profile, version=version, **lists)


def _samples(profile: Profile, findings: Findings) -> list[VoiceSample]:
    """The voice samples after the new texts, less any the person deleted (a new text may hold the same sentence)."""
    if not findings.samples:
        return profile.voice_samples
    return [v for v in findings.samples(profile)
            if v.id not in findings.rejected_ids and canonical(v.text) not in findings.rejected_statements]


def merge_findings(profile: Profile, findings: Findings, message: str | None = None
                   ) -> tuple[Change, dict[str, list[str]]]:
    hypotheses, rescored = [], []
    for h in profile.hypotheses:
        rated = findings.deltas.get(h.id)
        if rated is not None and rated[0] == h.statement:
            h = h.model_copy(update={"score": _plus(h.score, rated[1])})
            rescored.append(h.id)
        hypotheses.append(h)

    known_ids = {h.id for h in hypotheses} | findings.skip | findings.rejected_ids
    known_statements = {canonical(h.statement) for h in hypotheses} | findings.rejected_statements
    offset, added = profile.n_examples, []
    for candidate in findings.candidates:
        statement = canonical(candidate.statement)
        if candidate.id in known_ids or statement in known_statements:
            continue
        known_ids.add(candidate.id)
        known_statements.add(statement)
        # Example indices refer to the profile's whole example sequence: the earlier texts, then these.
        shifted = [e.model_copy(update={"example_index": e.example_index + offset}) if e.example_index is not None else e
                   for e in candidate.evidence]
        hypotheses.append(candidate.model_copy(update={"evidence": shifted}))
        added.append(candidate.id)

    retired = [h.id for h in hypotheses if retirable(h, findings.retire_below, findings.min_ratings)]
    hypotheses = [h for h in hypotheses if h.id not in retired]
    facts = findings.facts(profile, findings.rejected_ids) if findings.facts else profile.facts

    report = profile.report.model_copy(deep=True)
    if findings.inferred is not None:
        report.proposed += findings.inferred.proposed
        report.dropped_unsupported += findings.inferred.dropped_unsupported
    report.usage.add(findings.usage)
    updated = profile.model_copy(update={
        "hypotheses": with_their_measures(hypotheses, facts),
        "facts": facts,
        "voice_samples": _samples(profile, findings),
        "word_use": findings.word_use(profile) if findings.word_use else profile.word_use,
        "n_examples": profile.n_examples + len(findings.examples),
        # A chain: the hash names the whole sequence of example sets the profile has seen.
        "examples_hash": hashlib.sha256(
            f"{profile.examples_hash}+{examples_hash(findings.examples)}".encode()).hexdigest()[:16],
        "report": report,
    })
    summary = (f"{len(findings.examples)} new texts: rescored {len(rescored)}, added {len(added)}, "
               f"retired {len(retired)}" + (f" ({', '.join(retired)})" if retired else ""))
    details = {"texts": len(findings.examples), "rescored": len(rescored), "added": added, "retired": retired}
    change = Change(updated, f"{message} — {summary}" if message else summary, details)
    return change, {"rescored": rescored, "added": added, "retired": retired}


def score_difference(after: HypothesisScore | None, before: HypothesisScore | None) -> HypothesisScore:
    """The counts that `after` has beyond `before` (what new texts added)."""
    after, before = after or HypothesisScore(), before or HypothesisScore()
    return HypothesisScore(supports=after.supports - before.supports, contradicts=after.contradicts - before.contradicts,
                           neutral=after.neutral - before.neutral)


def _plus(score: HypothesisScore | None, delta: HypothesisScore) -> HypothesisScore:
    score = score or HypothesisScore()
    total = HypothesisScore(supports=score.supports + delta.supports, contradicts=score.contradicts + delta.contradicts,
                            neutral=score.neutral + delta.neutral)
    total.value = wilson_lower_bound(total.supports, total.tested)
    return total

