"""The tenant's other users as a reference population: what a profile inferred here is compared with beside the
model's default voice (pipeline/distinctive.py), so that a habit every user of the tenant shares is the genre's, not
the person's ("[1 of 5] The person, not the genre").

At each inference the latest `texts` texts of the tenant's other users (at most texts / min_users of any one user, so
that one prolific writer is not "the population") are measured into `ReferenceStats` — per-metric sums and word
counts — and dropped. Only those aggregates reach the inference: no other person's text enters a prompt,
a profile, a log or a response. A bounded sample, not the whole tenant: its cost is the same for a tenant of ten
users or of a million, and a few hundred texts pin a metric's mean and spread down well. Under `min_users` other
users there is no population (their aggregates would be a few people's habits), and the profile is compared with
the default voice alone, as the library does without `--reference`. Off unless `serve --population-texts N` is given:
measured on three corpora, a population leaves a third of the facts and identifies people less well
(benchmarks/population_facts.py)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from ..pipeline.reference import ReferenceStats
from ..profiles.store import ProfileStore
from .tables import user_examples

POPULATION_NAME = "the tenant's other users"


def tenant_population(store: ProfileStore, user_key: str, *, texts: int, min_users: int) -> ReferenceStats | None:
    """The aggregates of the latest `texts` texts of the user's tenant's other users; None where there are fewer than
    `min_users` of them, or `texts` is 0."""
    if texts <= 0:
        return None
    tenant, sep, _ = user_key.partition(":")
    if not sep:
        return None
    e = user_examples
    query = (select(e.c.user_key, e.c.text)
             .where(e.c.user_key.startswith(f"{tenant}:", autoescape=True), e.c.user_key != user_key)
             .order_by(e.c.id.desc()).limit(texts))
    with store.transaction() as connection:
        rows = connection.execute(query).all()
    per_user = max(1, texts // max(1, min_users))
    taken: Counter[str] = Counter()
    chosen = []
    for key, text in rows:
        if taken[key] < per_user:
            taken[key] += 1
            chosen.append(text)
    if len(taken) < min_users:
        return None
    return ReferenceStats.of(POPULATION_NAME, chosen)
