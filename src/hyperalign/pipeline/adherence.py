"""Profile adherence: how closely a candidate text follows one person's profile — the reranker of best-of-N.

1. By code, on the measured style facts: each fact's metric is measured on the candidate with the same code that
   measured the person (facts.py); its distance from the person's mean, in units of the spread between the person's
   own texts, gives the fact's score exp(-z²/2) (1 on the mean, 0.61 one spread away, 0.14 two away). A fact the
   candidate says nothing about (no numbers to write as digits) is left out. The facts' score is the geometric mean
   exp(-mean(z²)/2), with z capped at 4: one far-off habit (40-word sentences for a person of 8) weighs as it
   should, instead of being averaged away by the many facts every text meets ("never uses ellipses").
2. Optionally, by one structured LLM call, on the inferred hypotheses: the candidate is rated like a held-out text
   (supports / contradicts / neutral, selection.py), and the share of supporting verdicts among the non-neutral ones
   is the hypotheses' score.
The overall score is the facts' mean, or the mean of both parts when the hypotheses are checked.
3. The margin, where the facts were measured against a contrast (the backbone's default voice, distinctive.py): on
   those distinctive facts only, how much closer the candidate is to the person than to the default voice —
   mean((|value - contrast| - |value - person|) / spread), each term capped at ±Z_CAP. Adherence rewards any text of
   the genre that meets the person's many ordinary numbers; the margin rewards moving away from what the model writes
   anyway, towards the person (issue "[2 of 5]": best-of-4 by adherence picked "a student essay").
4. The word-use margin (word_use.py), where the profile measured the person's rates of common words against the
   default voice: the same comparison over a hundred habit words instead of five or six facts. Measured on the
   committed runs, it orders a prompt's outputs like the evaluation's Delta margin; the facts' margin does not
   (benchmarks/results/word-use-rerank.md). Best-of-N ranks by it first (`rerank="auto"`).

What the reranker sees: the candidate, and this person's profile (or, for few-shot, facts measured from this
person's own examples) — never other people's texts, never the evaluation's classifier or judge."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

from ..errors import InputError
from ..llm import LLMClient
from ..profiles.model import Fact, Hypothesis, UserExample, WordUse
from .facts import Text, measure
from .selection import rate_on_text
from .word_use import Z_CAP, word_margin


class FactCheck(BaseModel):
    id: str
    metric: str
    value: float
    target: float
    spread: float
    score: float
    contrast: float | None = None  # the default voice's mean on this metric, for a fact measured against it


class Adherence(BaseModel):
    score: float
    facts: list[FactCheck]
    facts_score: float | None
    hypotheses_score: float | None = None
    margin: float | None = None


def check_facts(text: str, facts: Sequence[Fact]) -> list[FactCheck]:
    parsed = Text.of(text)
    checks = []
    for fact in facts:
        m = fact.measure
        value = measure(m.metric, parsed)
        if value is None:
            continue
        z = abs(value - m.mean) / m.spread
        checks.append(FactCheck(id=fact.id, metric=m.metric, value=round(value, 3), target=m.mean, spread=m.spread,
                                score=round(math.exp(-z * z / 2), 4), contrast=m.contrast_mean))
    return checks



def facts_adherence(checks: Sequence[FactCheck]) -> float | None:
    """The facts' joint score: exp(-mean(z²)/2) with each z capped at Z_CAP (module docstring); None without facts."""
    if not checks:
        return None
    squares = [min(abs(c.value - c.target) / c.spread, Z_CAP) ** 2 for c in checks]
    return round(math.exp(-sum(squares) / len(squares) / 2), 4)


def facts_margin(checks: Sequence[FactCheck]) -> float | None:
    """Closer to the person than to the default voice, on the contrasted facts (module docstring, 3); None without
    any such fact."""
    terms = [max(-Z_CAP, min(Z_CAP, (abs(c.value - c.contrast) - abs(c.value - c.target)) / c.spread))
             for c in checks if c.contrast is not None]
    return round(sum(terms) / len(terms), 4) if terms else None


def word_rank(text: str, use: WordUse) -> float:
    """The candidate's word-use margin (word_use.py); a text too short to measure ranks last (-Z_CAP)."""
    margin = word_margin(text, use)
    return -Z_CAP if margin is None else margin


def rank_score(text: str, facts: Sequence[Fact], use: WordUse | None = None) -> tuple[float | None, str]:
    """What ranks a candidate by code alone, and its name: the word-use margin where the profile measured word use
    against the default voice, else the facts' margin where the facts were, else adherence (module docstring)."""
    if use is not None:
        return word_rank(text, use), "word-margin"
    checks = check_facts(text, facts)
    if any(c.contrast is not None for c in checks) or any(f.measure.contrast_mean is not None for f in facts):
        return facts_margin(checks), "margin"
    return facts_adherence(checks), "adherence"


def ranked_by(rerank: str, use: WordUse | None, facts: Sequence[Fact]) -> str:
    """What best-of-N ranks by: the asked one, checked against what the profile has; auto takes the first of the
    word-use margin, the facts' margin and adherence that it can give."""
    has_words = use is not None
    contrasted = any(f.measure.contrast_mean is not None for f in facts)
    if rerank == "word-margin" and not has_words:
        raise InputError("reranking by word-margin needs a profile whose word use was measured against the default "
                         "voice (the contrastive method, schema 9: infer it again)")
    if rerank == "margin" and not contrasted:
        raise InputError("reranking by margin needs facts measured against the default voice (the contrastive method)")
    if rerank != "auto":
        return rerank
    return "word-margin" if has_words else "margin" if contrasted else "adherence"


async def aadherence(
    text: str, facts: Sequence[Fact], hypotheses: Sequence[Hypothesis] = (), *,
    client: LLMClient | None = None,
) -> Adherence:
    """The candidate's adherence; the LLM hypotheses check runs only when `client` and `hypotheses` are given."""
    checks = check_facts(text, facts)
    facts_score = facts_adherence(checks)
    hypotheses_score: float | None = None
    if client is not None and hypotheses:
        verdicts = await rate_on_text(client, list(hypotheses), UserExample(text=text or "(empty)"),
                                                   step="adherence")
        decided = [v for v in verdicts if v != "neutral"]
        hypotheses_score = sum(v == "supports" for v in decided) / len(decided) if decided else 0.5
    parts = [s for s in (facts_score, hypotheses_score) if s is not None]
    score = sum(parts) / len(parts) if parts else 0.0
    return Adherence(score=round(score, 4), facts=checks, facts_score=facts_score,
                     hypotheses_score=hypotheses_score, margin=facts_margin(checks))
