"""What a run's profiles are like: how many hypotheses were proposed, kept and shared across people, how many facts
were kept — and profile identification: how often a held-out text of a person is matched to their own profile among
the run's profiles, by the facts (code, every held-out text) and by the hypotheses (identify.py). Chance is 1 / the number of profiles. A profile whose
statements could be anyone's cannot be told from the others; one that names the person's differences can."""

from __future__ import annotations

from typing import Any

from ...pipeline.adherence import check_facts, facts_adherence
from ...pipeline.generic import generic_share
from ...profiles.model import Profile
from ..corpus import Split
from ..stats import bootstrap


def identify(text: str, profiles: dict[str, Profile]) -> str | None:
    """The author whose profile's facts the text adheres to most; None when no profile has facts."""
    scores = {author: facts_adherence(check_facts(text, p.facts)) for author, p in profiles.items()}
    known = {a: s for a, s in scores.items() if s is not None}
    return max(known, key=lambda a: (known[a], a)) if known else None


def profile_metrics(split: Split, profiles: dict[str, dict[str, Profile]],
                    by_hypotheses: dict[str, dict[str, Any]] | None = None, seed: int = 0) -> dict[str, Any]:
    """Per method: hypotheses and facts, identification by facts, and `by_hypotheses` (identify.py) where given."""
    references = [(i.reference, i.author) for a in split.authors for i in a.held_out]
    result: dict[str, Any] = {}
    for method, users in profiles.items():
        if not users:
            continue
        proposed = [p.report.proposed for p in users.values()]
        kept = [len(p.inferred_hypotheses) for p in users.values()]
        identified = [float(identify(text, users) == author) for text, author in references if author in users]
        verification = [p.report.verification or {} for p in users.values()]
        result[method] = {
            "profiles": len(users),
            "hypotheses_proposed": sum(proposed) / len(users),
            "hypotheses_kept": sum(kept) / len(users),
            "hypotheses_failed_verification": sum(v.get("failed", 0.0) for v in verification) / len(users),
            "shared_share": generic_share(list(users.values())),
            "facts_kept": sum(len(p.facts) for p in users.values()) / len(users),
            "identification_by_facts": bootstrap(identified, seed=seed).as_dict() if identified else None,
            "identification_chance": 1 / len(users),
            "identification_by_hypotheses": (by_hypotheses or {}).get(method),
            "seconds_per_profile": sum(p.report.seconds for p in users.values()) / len(users),
            "contrast_seconds_per_profile": sum(p.contrast.seconds for p in users.values() if p.contrast) / len(users),
        }
    return result
