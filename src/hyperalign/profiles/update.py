"""Incremental update of a stored profile from new texts of the same user.

1. Rescore: every hypothesis is rated on each new text; the counts add to those it already has.
2. Infer: new candidate hypotheses from the new texts (evidence-checked as always); ones the profile already
   holds, that an earlier update retired, or that the person deleted (by id or normalized statement; measured facts
   by id), are skipped.
3. Retire: an inferred, unpinned hypothesis rated at least `min_ratings` times whose score (Wilson lower bound of
   support) is below `retire_below` leaves the active profile; older versions keep it.

The LLM work happens once, against the version read at the start; the merge (3 and the additions of 1 and 2) is
re-applied to whatever version is current when it is saved, so a person's edit made meanwhile is kept, and a
hypothesis the person reworded meanwhile does not receive counts that rated the old wording."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..errors import InputError
from ..llm import Completion, LLMClient
from ..llm.loop import run_sync
from ..pipeline import evidence
from ..pipeline.facts import merge_facts, style_facts
from ..pipeline.infer import InferenceOptions, ainfer_profile, merge_usage
from ..pipeline.selection import score_hypotheses, score_value
from .model import (
    Hypothesis,
    HypothesisScore,
    InferenceReport,
    Profile,
    UserExample,
    examples_hash,
)
from .rejections import rejections
from .store import Action, Change, ProfileStore, VersionInfo

AUTOMATED_AUTHOR = "hyperalign"


@dataclass
class UpdateOptions:
    retire_below: float = 0.1
    min_ratings: int = 3
    infer_new: bool = True
    # Attributes are left alone: after the first inference they are the person's to edit.
    # New hypotheses from the new texts come by the paper's one pass for now: an update rescores by held-out
    # support (below), which is that method's. A contrastive update (the new texts against their default voice,
    # verified by discrimination) is not built yet.
    inference: InferenceOptions = field(
        default_factory=lambda: InferenceOptions(method="paper", infer_attributes=False, style_facts=False))
    # Recompute the measured style facts from the new texts and blend them in, weighted by text counts.
    update_facts: bool = True


@dataclass
class UpdateResult:
    profile: Profile
    version: VersionInfo | None  # None: nothing changed, no version saved
    rescored: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


@dataclass
class _Findings:
    """What the LLM work found, in a form that can be merged into any later version of the profile."""

    deltas: dict[str, tuple[str, HypothesisScore]]  # id -> (the statement rated, the counts the new texts added)
    candidates: list[Hypothesis]
    facts: list[Hypothesis]  # measured from the new texts alone
    completions: list[Completion]  # the rescoring's
    inferred: InferenceReport | None
    examples: list[UserExample]
    skip: set[str]
    # What the person deleted (rejections.py), read again for each attempt to save: never added back.
    rejected_ids: set[str] = field(default_factory=set)
    rejected_statements: set[str] = field(default_factory=set)


def retirable(h: Hypothesis, options: UpdateOptions) -> bool:
    if h.pinned or h.origin == "person" or h.score is None:
        return False
    # Clamped: with no support the Wilson bound can come out a rounding error below zero.
    return h.score.tested >= options.min_ratings and max(0.0, h.score.value) < options.retire_below


async def aupdate_profile(
    client: LLMClient,
    store: ProfileStore,
    user_id: str,
    examples: Sequence[UserExample],
    options: UpdateOptions | None = None,
    *,
    author: str = AUTOMATED_AUTHOR,
    message: str | None = None,
) -> UpdateResult:
    options = options or UpdateOptions()
    examples = list(examples)
    if not examples:
        raise InputError("no new examples to update the profile with")
    if options.min_ratings < 1 or not 0.0 <= options.retire_below <= 1.0:
        raise InputError("min_ratings must be at least 1 and retire_below between 0 and 1")
    base = store.get(user_id).profile

    # Rating and inferring are independent LLM work: run them together. Measured facts are measured, not rated.
    rateable = [h for h in base.hypotheses if h.measure is None]
    scoring = score_hypotheses(client, rateable, examples)
    if options.infer_new:
        (rescored, completions), inferred = await asyncio.gather(
            scoring, ainfer_profile(client, user_id, examples, None,
                                    # candidates for an existing profile: no facts (blended below), no minimum
                                    replace(options.inference, style_facts=False, min_hypotheses=0)))
    else:
        (rescored, completions), inferred = await scoring, None
    deltas = {after.id: (after.statement, _minus(after.score, before.score))
              for before, after in zip(rateable, rescored, strict=True)}
    facts = style_facts([e.text for e in examples], language=options.inference.language) if options.update_facts else []
    findings = _Findings(deltas, inferred.hypotheses if inferred else [], facts, completions,
                         inferred.report if inferred else None, examples, store.retired_ids(user_id))

    merged: list[tuple[Change, dict[str, list[str]]]] = []

    def merge(profile: Profile) -> Change:
        # Re-read on every attempt: a deletion made during the LLM work moved the version, so this runs again.
        rejected = [r.hypothesis for r in rejections(store, user_id)]
        fresh = replace(findings, rejected_ids={h.id for h in rejected},
                        rejected_statements={evidence.normalize(h.statement).lower() for h in rejected})
        merged[:] = [merge_findings(profile, fresh, options, message)]  # the last attempt is the one saved
        return merged[0][0]

    version = store.modify(user_id, merge, author=author, action=Action.UPDATE)
    if version is None:
        return UpdateResult(profile=store.get(user_id).profile, version=None)
    change, lists = merged[0]
    return UpdateResult(profile=change.profile, version=version, **lists)


def update_profile(
    client: LLMClient,
    store: ProfileStore,
    user_id: str,
    examples: Sequence[UserExample],
    options: UpdateOptions | None = None,
    *,
    author: str = AUTOMATED_AUTHOR,
    message: str | None = None,
) -> UpdateResult:
    return run_sync(aupdate_profile(client, store, user_id, examples, options, author=author, message=message))


def merge_findings(
    profile: Profile, findings: _Findings, options: UpdateOptions, message: str | None = None
) -> tuple[Change, dict[str, list[str]]]:
    hypotheses, rescored = [], []
    for h in profile.hypotheses:
        rated = findings.deltas.get(h.id)
        if rated is not None and rated[0] == h.statement:
            h = h.model_copy(update={"score": _plus(h.score, rated[1])})
            rescored.append(h.id)
        hypotheses.append(h)

    known_ids = {h.id for h in hypotheses} | findings.skip | findings.rejected_ids
    known_statements = {evidence.normalize(h.statement).lower() for h in hypotheses} | findings.rejected_statements
    offset, added = profile.n_examples, []
    for candidate in findings.candidates:
        statement = evidence.normalize(candidate.statement).lower()
        if candidate.id in known_ids or statement in known_statements:
            continue
        known_ids.add(candidate.id)
        known_statements.add(statement)
        # Example indices refer to the profile's whole example sequence: the earlier texts, then these.
        shifted = [e.model_copy(update={"example_index": e.example_index + offset}) if e.example_index is not None else e
                   for e in candidate.evidence]
        hypotheses.append(candidate.model_copy(update={"evidence": shifted}))
        added.append(candidate.id)

    retired = [h.id for h in hypotheses if retirable(h, options)]
    hypotheses = [h for h in hypotheses if h.id not in retired]
    if findings.facts:
        kept = [h for h in hypotheses if h.measure is None]
        facts = [f for f in merge_facts([h for h in hypotheses if h.measure is not None], findings.facts,
                                        profile.n_examples, len(findings.examples))
                 if f.id not in findings.rejected_ids]
        hypotheses = kept + facts

    report = profile.report.model_copy(deep=True)
    merge_usage(report, findings.completions)
    if findings.inferred is not None:
        report.add_counts(findings.inferred)
    updated = profile.model_copy(update={
        "hypotheses": hypotheses,
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


def _minus(after: HypothesisScore | None, before: HypothesisScore | None) -> HypothesisScore:
    after, before = after or HypothesisScore(), before or HypothesisScore()
    return HypothesisScore(supports=after.supports - before.supports, contradicts=after.contradicts - before.contradicts,
                           neutral=after.neutral - before.neutral)


def _plus(score: HypothesisScore | None, delta: HypothesisScore) -> HypothesisScore:
    score = score or HypothesisScore()
    total = HypothesisScore(supports=score.supports + delta.supports, contradicts=score.contradicts + delta.contradicts,
                            neutral=score.neutral + delta.neutral)
    total.value = score_value(total)
    return total

