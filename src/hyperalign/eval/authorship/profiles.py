"""What a run's profiles are like: how many hypotheses were proposed, kept and shared across people, how many facts
were kept — and profile identification: how often a held-out text of a person is matched to their own profile among
the run's profiles, by the facts (code, every held-out text) and by the hypotheses (identify.py). Chance is 1 / the
number of profiles. A profile whose statements could be anyone's cannot be told from the others; one that names the
person's differences can.

Identification by facts weighs each profile's facts against the run's population (every demonstration of the run,
as per-metric means and spreads; evaluation code only, nothing of it reaches a profile or a prompt): a profile's
score for a text is the log-likelihood ratio, summed over its facts, of the text's value under the person's
(mean, spread) against the population's, each distance capped at Z_CAP (pipeline/word_use.py). Why not "the profile
the text adheres to most": profiles name different facts, and adherence has no baseline, so a profile whose facts
every text meets ("never uses semicolons", a wide spread) wins every text — in the committed AAAC run one profile
took 11 of the 30 held-out texts that way. A fact every text meets has a ratio near 1 and adds nothing; a fact that
sets the person apart from the population adds where the text shares it."""

from __future__ import annotations

import math
from statistics import mean
from typing import Any

from ...pipeline.distinctive import floored_spread
from ...pipeline.facts import Text, measure
from ...pipeline.generic import generic_share, mark_generic
from ...pipeline.word_use import Z_CAP
from ...profiles.model import Profile
from ..corpus import Split
from ..stats import bootstrap


class Population:
    """The texts every profile's facts are weighed against, as per-metric (mean, spread), measured once a metric."""

    def __init__(self, texts: list[str]):
        self.texts = [Text.of(t) for t in texts if t.strip()]
        self._stats: dict[str, tuple[float, float] | None] = {}

    def stats(self, metric: str) -> tuple[float, float] | None:
        """(mean, spread floored as the person's is) of the metric over the population; None under two values."""
        if metric not in self._stats:
            values = [v for v in (measure(metric, t) for t in self.texts) if v is not None]
            self._stats[metric] = (mean(values), floored_spread(metric, values)) if len(values) >= 2 else None
        return self._stats[metric]


def _log_density(value: float, centre: float, spread: float) -> float:
    z = min(abs(value - centre) / spread, Z_CAP)
    return -z * z / 2 - math.log(spread)


def identification_score(text: str | Text, profile: Profile, population: Population) -> float | None:
    """The log-likelihood ratio of the text under the profile's facts against the population (module docstring);
    None when no fact of the profile can be measured on the text and the population."""
    parsed = text if isinstance(text, Text) else Text.of(text)
    terms = []
    for fact in profile.facts:
        m, value = fact.measure, measure(fact.measure.metric, parsed)
        baseline = population.stats(m.metric)
        if value is None or baseline is None:
            continue
        terms.append(_log_density(value, m.mean, m.spread) - _log_density(value, *baseline))
    return sum(terms) if terms else None


def identify(text: str, profiles: dict[str, Profile], population: Population) -> str | None:
    """The author whose profile's facts make the text likeliest against the population; None when no profile has a
    fact to weigh. A profile with nothing to weigh scores 0, as the population itself would."""
    parsed = Text.of(text)
    scores = {author: identification_score(parsed, p, population) for author, p in profiles.items()}
    if all(s is None for s in scores.values()):
        return None
    return max(scores, key=lambda a: (scores[a] or 0.0, a))


def profile_metrics(split: Split, profiles: dict[str, dict[str, Profile]],
                    by_hypotheses: dict[str, dict[str, Any]] | None = None, seed: int = 0,
                    by_specific: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per method: hypotheses and facts, identification by facts, and by hypotheses (identify.py: all kept, and
    without those marked generic) where given."""
    references = [(i.reference, i.author) for a in split.authors for i in a.held_out]
    population = Population([d.text for a in split.authors for d in a.demonstrations])
    result: dict[str, Any] = {}
    for method, users in profiles.items():
        if not users:
            continue
        proposed = [p.report.proposed for p in users.values()]
        kept = [len(p.inferred_hypotheses) for p in users.values()]
        identified = [float(identify(text, users, population) == author)
                      for text, author in references if author in users]
        verification = [p.report.verification or {} for p in users.values()]
        result[method] = {
            "profiles": len(users),
            "hypotheses_proposed": sum(proposed) / len(users),
            "hypotheses_kept": sum(kept) / len(users),
            "hypotheses_failed_verification": sum(v.get("failed", 0.0) for v in verification) / len(users),
            "shared_share": generic_share(list(users.values())),
            "generic_share": _marked_share(list(users.values())),
            "facts_kept": sum(len(p.facts) for p in users.values()) / len(users),
            "identification_by_facts": bootstrap(identified, seed=seed).as_dict() if identified else None,
            "identification_chance": 1 / len(users),
            "identification_by_hypotheses": (by_hypotheses or {}).get(method),
            "identification_by_specific_hypotheses": (by_specific or {}).get(method),
            "seconds_per_profile": sum(p.report.seconds for p in users.values()) / len(users),
            "contrast_seconds_per_profile": sum(p.contrast.seconds for p in users.values() if p.contrast) / len(users),
        }
    return result


def _marked_share(profiles: list[Profile]) -> float:
    """The share of inferred hypotheses that the batch's generic mark (pipeline/generic.py) would flag in this
    population: word for word or every word shared."""
    inferred = [h for p in mark_generic(profiles) for h in p.hypotheses if h.origin == "inferred"]
    return sum(h.generic for h in inferred) / len(inferred) if inferred else 0.0
