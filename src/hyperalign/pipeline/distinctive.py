"""Distinctive facts and words: how the person differs from the contrast, by code.

Every metric of `facts.py` is measured on the person's texts and on the contrast's (the default voice, and a
reference population's aggregates where one was given). A fact is kept only where the person stands apart:
z = (person's mean − contrast's mean) / pooled spread, |z| ≥ `min_z`. Against both a default voice and a population
the smaller |z| counts (and the two must agree in sign): a habit the model lacks but every writer of the genre has is
the genre's, not the person's. Kept facts are stated relative to the default ("sentences average 12 words — about
half a typical answer's 23"), so a generator reads the direction, not a bare number.

Distinctive words are function words, discourse markers, contractions, interjections — habits, not topics: only
those closed classes count (`HABIT_WORDS`), and of them not proper nouns (capitalized where they are not
sentence-initial, "May") nor words found in only one of the person's texts. They are scored by
log-odds with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008) against the contrast's word counts, the
general language's frequencies as the prior. Words the contrast leans on and the person never uses are the facts'
other side ("avoids")."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from statistics import mean, pstdev

from ..profiles.model import Evidence, Fact, Measure
from .facts import (
    METRICS,
    RATE_FLOOR,
    SPREAD_FLOOR,
    Text,
    background_frequency,
    content_words,
    edge_metrics,
    measure,
    measure_of,
    quartiles,
    statement_of,
)
from .reference import ReferenceStats

# Habits, not topics: English function words, discourse markers and interjections (closed classes: a topic cannot
# lend them to a text), beside contractions. "nation", "dream", "civil" are common words too, and they were one
# essayist's "distinctive words" when any common word counted: the subject of her essays, not her style.
HABIT_WORDS = frozenset("""
a about above across after afterwards again against all almost alone along already also although always am among
amongst an and another any anybody anyhow anyone anything anyway anyways anywhere are around as at away back be
became because become been before beforehand behind being below beside besides between beyond both but by can
cannot could did do does doing done down during each either else elsewhere enough especially even ever every
everybody everyone everything everywhere except few for former formerly from further furthermore had has have
having he hence her here hereby herein hers herself him himself his how however i if in indeed instead into is it
its itself just last latter least less lest like likewise many may maybe me meanwhile might mine more moreover most
mostly much must my myself namely neither never nevertheless next no nobody none nonetheless noone nor not nothing
now nowhere of off often on once one ones only onto or other others otherwise ought our ours ourselves out over own
perhaps quite rather really same several shall she should since so some somebody somehow someone something
sometime sometimes somewhat somewhere soon still such than that the their theirs them themselves then thence there
thereafter thereby therefore therein these they this those though through throughout thus till to together too
toward towards under unless until up upon us very via was we well were what whatever when whence whenever where
whereas whereby wherein wherever whether which while whilst who whoever whole whom whomever whose why will with
within without would yet you your yours yourself yourselves
absolutely accordingly actually additionally admittedly alright apparently arguably basically certainly clearly
consequently definitely essentially eventually finally firstly frankly generally hopefully honestly ideally
incidentally lastly literally luckily naturally notably obviously okay ok overall personally plainly possibly
presumably pretty probably secondly seriously simply specifically surely thankfully totally truly typically
ultimately undoubtedly unfortunately
ah aha alas cheers eh gosh hey hmm hooray huh nah nope oh oops ouch phew ugh um wow yeah yep yes
""".split())
AVOID_EXPECTED = 3.0
PRIOR_WORDS = 10_000.0  # the prior's weight in words: a word the contrast never uses is not infinitely distinctive
_RATIOS = ((0.3, "about a quarter of"), (0.42, "about a third of"), (0.62, "about half"), (0.8, "less than"),
           (1.25, None), (1.7, "more than"), (2.5, "about twice"), (3.5, "about three times"), (math.inf, "many times"))


def floor_of(metric: str) -> float:
    kind = metric.partition(":")[0]
    return SPREAD_FLOOR.get(metric, 0.25 if kind in ("opens_with", "ends_with") else RATE_FLOOR)


def floored_spread(metric: str, values: Sequence[float]) -> float:
    """The spread of a metric's values over some texts, never under the metric's floor (facts.SPREAD_FLOOR)."""
    return max(pstdev(values) if len(values) > 1 else 0.0, floor_of(metric))


def distinctiveness(person: Measure, contrast_values: Sequence[float]) -> tuple[float, float]:
    """(the contrast's mean, z) for one metric."""
    contrast_mean = mean(contrast_values)
    contrast_spread = floored_spread(person.metric, contrast_values)
    pooled = math.sqrt((person.spread ** 2 + contrast_spread ** 2) / 2)
    return contrast_mean, (person.mean - contrast_mean) / pooled


def _against_reference(person: Measure, reference: ReferenceStats | None) -> float | None:
    if reference is None or person.metric not in reference.metrics:
        return None
    ref_mean, ref_spread = reference.metrics[person.metric]
    pooled = math.sqrt((person.spread ** 2 + max(ref_spread, floor_of(person.metric)) ** 2) / 2)
    return (person.mean - ref_mean) / pooled


def combined_z(z_default: float, z_reference: float | None) -> float:
    """The smaller of the two, where they agree in sign; 0 where they disagree."""
    if z_reference is None:
        return z_default
    if z_default * z_reference <= 0:
        return 0.0
    return min(z_default, z_reference, key=abs)


def format_value(metric: str, value: float) -> str:
    """A metric's value as its statements write it ("12", "40%", "3 per 1,000 words")."""
    kind = metric.partition(":")[0]
    if metric in ("numbers_as_digits", "lowercase_starts") or kind in ("opens_with", "ends_with"):
        return f"{value:.0%}"
    if metric == "vocabulary":
        return f"{value * 50:.0f} in 50"
    if metric in ("word_letters", "paragraph_sentences"):
        return f"{value:.1f}"
    if metric == "sentence_words":
        return f"{value:.0f}"
    return f"{value:.0f} per 1,000 words"


def relative(metric: str, person: float, contrast: float) -> str:
    """How the person's value compares with the typical answer's, in words."""
    typical = f"a typical answer's {format_value(metric, contrast)}"
    if contrast <= 0:
        return "a typical answer: none"
    ratio = person / contrast
    phrase = next(p for bound, p in _RATIOS if ratio <= bound)
    if person == 0:
        return f"where a typical answer has {format_value(metric, contrast)}"
    if phrase is None:  # a kept fact differs by a pooled spread or more, even where the ratio is near 1
        phrase = "less than" if person < contrast else "more than"
    return f"{phrase} {typical}"


def _fact(metric: str, person: Measure, contrast_mean: float, z: float, evidence: list[Evidence]) -> Fact:
    measured = person.model_copy(update={"contrast_mean": round(contrast_mean, 3), "z": round(z, 2)})
    base = statement_of(metric, measured) or metric
    statement = f"{base.rstrip('.')} — {relative(metric, measured.mean, contrast_mean)}."
    return Fact(statement=statement, evidence=evidence, measure=measured)


def distinctive_facts(
    texts: Sequence[str], contrast_texts: Sequence[str], *, reference: ReferenceStats | None = None,
    min_z: float = 1.0, language: str = "en",
) -> tuple[list[Fact], int]:
    """The person's facts that stand apart from the contrast, and how many metrics were measured in all."""
    texts = [t for t in texts if t.strip()]
    contrast = [Text.of(t) for t in contrast_texts if t.strip()]
    if not texts or not contrast:
        return [], 0
    person = [Text.of(t) for t in texts]
    kept: list[Fact] = []
    measured = 0

    def consider(metric: str, low_high: tuple[float | None, float | None] = (None, None),
                 evidence: list[Evidence] | None = None) -> None:
        nonlocal measured
        values = [v for v in (measure(metric, t) for t in person) if v is not None]
        others = [v for v in (measure(metric, t) for t in contrast) if v is not None]
        if not values or not others:
            return
        measured += 1
        m = measure_of(metric, values, *low_high)
        contrast_mean, z = distinctiveness(m, others)
        z = combined_z(z, _against_reference(m, reference))
        if abs(z) >= min_z:
            kept.append(_fact(metric, m, contrast_mean, z, evidence or []))

    lengths = [float(len(s)) for t in person for s in t.sentences]
    for metric in METRICS:
        consider(metric, quartiles(lengths) if metric == "sentence_words" and lengths else (None, None))
    for metric, quotes in edge_metrics(texts):
        consider(metric, evidence=quotes)
    uses, avoids = distinctive_words(texts, [t.raw for t in contrast], reference=reference, language=language)
    for words, verb in ((uses, "uses"), (avoids, "avoids")):
        if words:
            metric = "uses:" + "|".join(words)
            values = [measure(metric, t) or 0.0 for t in person]
            others = [measure(metric, t) or 0.0 for t in contrast]
            m = measure_of(metric, values)
            contrast_mean, z = distinctiveness(m, others)
            listed = ", ".join(f"“{w}”" for w in words)
            statement = (f"Uses these words far more often than a typical answer: {listed} (about {m.mean:.0f} per "
                         f"1,000 words; a typical answer {contrast_mean:.0f})." if verb == "uses" else
                         f"Rarely or never uses words a typical answer leans on: {listed} (about {m.mean:.0f} per "
                         f"1,000 words; a typical answer {contrast_mean:.0f}).")
            measured_with = m.model_copy(update={"contrast_mean": round(contrast_mean, 3), "z": round(z, 2)})
            kept.append(Fact(statement=statement, measure=measured_with))
    return kept, measured


def habit_counts(texts: Sequence[str]) -> tuple[list[Counter[str]], Counter[str]]:
    """Per-text word counts, and how often each word is capitalized where it is not sentence-initial."""
    per_text, capitalized = [], Counter[str]()
    for raw in texts:
        counts: Counter[str] = Counter()
        for sentence in Text.of(raw).sentences:
            for position, word in enumerate(sentence):
                if not word[0].isalpha():
                    continue
                lowered = word.lower()
                counts[lowered] += 1
                if position > 0 and word[0].isupper():
                    capitalized[lowered] += 1
        per_text.append(counts)
    return per_text, capitalized


def is_habit(word: str, language: str) -> bool:
    if "'" in word or "’" in word:
        return True  # contractions
    return language != "en" or word in HABIT_WORDS  # other languages: no closed-class list yet, every word counts


def log_odds(count: float, total: float, other: float, other_total: float, prior: float) -> float:
    """How much more the person uses a token than the contrast: the log-odds ratio with an informative Dirichlet
    prior, over its standard error (Monroe, Colaresi & Quinn 2008)."""
    alpha = PRIOR_WORDS * prior
    delta = (math.log((count + alpha) / (total + PRIOR_WORDS - count - alpha))
             - math.log((other + alpha) / (other_total + PRIOR_WORDS - other - alpha)))
    return delta / math.sqrt(1 / (count + alpha) + 1 / (other + alpha))


def distinctive_words(
    texts: Sequence[str], contrast_texts: Sequence[str], *, reference: ReferenceStats | None = None,
    top: int = 8, min_z: float = 2.0, language: str = "en",
) -> tuple[list[str], list[str]]:
    """(words the person uses far more than the contrast, words the contrast leans on that the person never uses —
    in at least half its texts, and at a rate that would have put it 3 or more times in the person's texts)."""
    try:
        import wordfreq  # noqa: F401
    except ImportError:
        return [], []
    per_text, capitalized = habit_counts(texts)
    person: Counter[str] = sum(per_text, Counter())
    contrast: Counter[str] = Counter()
    contrast_docs: Counter[str] = Counter()
    for raw in contrast_texts:
        counts = Counter(content_words(raw))
        contrast.update(counts)
        contrast_docs.update(counts.keys())
    if reference is not None:
        contrast.update(reference.words)
    total, other_total = sum(person.values()), sum(contrast.values())
    if not total or not other_total:
        return [], []
    uses, avoids = [], []
    for word in set(person) | set(contrast):
        if len(word) < 2 or not is_habit(word, language):
            continue
        prior = max(background_frequency(word, language), 1e-9)
        z = log_odds(person[word], total, contrast[word], other_total, prior)
        documents = sum(1 for c in per_text if word in c)
        proper = capitalized[word] >= 0.5 * person[word] > 0 and not word.startswith(("i'", "i’"))
        if z >= min_z and person[word] >= 3 and documents >= 2 and not proper:
            uses.append((z, word))
        elif person[word] == 0 and contrast_docs[word] >= max(2, len(contrast_texts) / 2):
            # At the contrast's rate the person would have used it `expected` times; never using it is a habit
            # when that is 3 or more (a Poisson count of 0 at a mean of 3 has probability 0.05).
            expected = contrast[word] / other_total * total
            if expected >= AVOID_EXPECTED:
                avoids.append((expected, word))
    return ([w for _, w in sorted(uses, reverse=True)[:top]], [w for _, w in sorted(avoids, reverse=True)[:top]])
