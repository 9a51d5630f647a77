"""A readable diff between two versions of a profile: attributes, hypotheses and measured facts, one line per
change."""

from __future__ import annotations

from .model import Fact, Hypothesis, HypothesisScore, Profile


def diff_profiles(old: Profile, new: Profile) -> list[str]:
    """What changed from `old` to `new`, one line per change, for a person to read."""
    lines = []
    for key in dict.fromkeys([*old.attributes, *new.attributes]):
        before, after = old.attributes.get(key), new.attributes.get(key)
        if before == after:
            continue
        if before is None:
            lines.append(f"+ attribute {key}: {after!r}")
        elif after is None:
            lines.append(f"- attribute {key} (was {before!r})")
        else:
            lines.append(f"~ attribute {key}: {before!r} → {after!r}")
    old_by_id, new_by_id = {h.id: h for h in old.hypotheses}, {h.id: h for h in new.hypotheses}
    for h in new.hypotheses:
        if h.id not in old_by_id:
            lines.append(f"+ [{h.id}] {h.aspect}: {h.statement}{_marks(h)}")
    for h in old.hypotheses:
        if h.id not in new_by_id:
            lines.append(f"- [{h.id}] {h.aspect}: {h.statement}{_marks(h)}")
    for h in new.hypotheses:
        previous = old_by_id.get(h.id)
        if previous is not None:
            lines += [f"~ [{h.id}] {change}" for change in _hypothesis_changes(previous, h)]
    old_facts, new_facts = {f.id: f for f in old.facts}, {f.id: f for f in new.facts}
    lines += [f"+ [{f.id}] measured: {f.statement}{_marks(f)}" for f in new.facts if f.id not in old_facts]
    lines += [f"- [{f.id}] measured: {f.statement}{_marks(f)}" for f in old.facts if f.id not in new_facts]
    for f in new.facts:
        earlier = old_facts.get(f.id)
        if earlier is not None and earlier.statement != f.statement:
            lines.append(f"~ [{f.id}] statement: {earlier.statement!r} → {f.statement!r}")
        if earlier is not None and earlier.pinned != f.pinned:
            lines.append(f"~ [{f.id}] " + ("pinned: " if f.pinned else "unpinned: ") + repr(f.statement))
    return lines


def _marks(h: Hypothesis | Fact) -> str:
    marks = (["pinned"] if h.pinned else []) + (["by a person"] if h.origin == "person" else [])
    return f" ({', '.join(marks)})" if marks else ""


def _hypothesis_changes(a: Hypothesis, b: Hypothesis) -> list[str]:
    changes = []
    if a.statement != b.statement:
        changes.append(f"statement: {a.statement!r} → {b.statement!r}")
    if a.aspect != b.aspect:
        changes.append(f"aspect: {a.aspect} → {b.aspect}")
    if a.pinned != b.pinned:
        changes.append(("pinned: " if b.pinned else "unpinned: ") + repr(b.statement))
    if a.origin != b.origin:
        changes.append(f"origin: {a.origin} → {b.origin}")
    quotes_a, quotes_b = [e.quote for e in a.evidence], [e.quote for e in b.evidence]
    if quotes_a != quotes_b:
        changes += [f"quote added: {q!r}" for q in quotes_b if q not in quotes_a]
        changes += [f"quote removed: {q!r}" for q in quotes_a if q not in quotes_b]
    if a.score != b.score:
        changes.append(f"score: {_score(a.score)} → {_score(b.score)}")
    return changes


def _score(score: HypothesisScore | None) -> str:
    if score is None:
        return "unrated"
    return f"{score.supports}/{score.tested} support, {score.contradicts} contradict ({score.value:.2f})"
