"""Revision (`GenerationOptions.revise`): code measures a draft on the person's facts, one LLM call asks for a
revision that keeps the content and fixes the deviations it names ("Your sentences average 24 words; this person's
average 12."), and code measures the revision the same way. It replaces the draft only when it is measurably closer
to the person — by the margin over the default voice where the facts were measured against it, else by adherence
(adherence.py) — and still says what the draft said (half of the draft's distinct words at least). A small model
that cannot revise therefore costs one call and never a worse text; `Revision` records which way it went.

Which facts: the distinctive ones (measured against the default voice) where the profile has any, else all; a fact
is a deviation where the draft is at least a spread away from the person's mean; the largest `MAX_DEVIATIONS`
(distances capped at adherence's Z_CAP, ties in the profile's order)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from ..llm import CompletionRequest, LLMClient, TextBias
from ..profiles.model import Fact
from ..prompts import render_messages
from .adherence import Z_CAP, FactCheck, check_facts, facts_adherence, facts_margin
from .facts import LABELS, PUNCTUATION, content_words

MAX_DEVIATIONS = 4
MIN_KEPT_WORDS = 0.5  # the share of the draft's distinct words the revision must still use: it keeps the content
# Metrics read as a share, not a count (the rest are per 1,000 words, or their own unit below).
_SHARES = ("numbers_as_digits", "lowercase_starts")
_UNITS = {"sentence_words": ("sentences average {} words", "shorter sentences", "longer sentences"),
          "paragraph_sentences": ("paragraphs average {} sentences", "shorter paragraphs", "longer paragraphs"),
          "word_letters": ("words average {} letters", "shorter, plainer words", "longer words"),
          "vocabulary": ("{} different words in every 50", "repeat words more", "vary the words more")}


class Revision(BaseModel):
    """What the revision pass did: the deviations it named, the draft's and the revision's score (margin or
    adherence, `scored_by`), and whether the revision was kept (else the draft stands, and `reason` says why)."""

    deviations: list[str] = []
    scored_by: str = "adherence"
    draft_score: float | None = None
    revised_score: float | None = None
    kept: bool = False
    reason: str = ""
    draft: str = ""


# A chat model's line before the text ("Here is the revised text:", "Sure! Revised version:"): not the person's words.
_PREAMBLE = re.compile(r"\A\s*(?:here(?: is|'s)|sure|certainly|of course|okay|ok|revised)\b[^\n]{0,80}:[ \t]*\n+",
                       re.IGNORECASE)


def without_preamble(text: str) -> str:
    return _PREAMBLE.sub("", text, count=1).strip()


def _amount(metric: str, value: float) -> str:
    if metric in _SHARES:
        return f"{value:.0%}"
    return f"{value:.1f}" if metric in ("paragraph_sentences", "word_letters") else f"{value:.0f}"


def deviation_text(check: FactCheck) -> str:
    """One named deviation, as the revision prompt says it: what the draft does, what the person does, what to do."""
    metric, draft, person = check.metric, check.value, check.target
    kind, _, argument = metric.partition(":")
    more = draft < person
    if kind in ("opens_with", "ends_with"):
        where = "Begin" if kind == "opens_with" else "End"
        return (f"{where} the text with “{argument}”, as this person does." if more else
                f"Do not {where.lower()} the text with “{argument}”: this person rarely does.")
    if kind == "punctuation" and person < 0.5:
        return f"Remove every one of the {PUNCTUATION[argument][0]}: this person never uses them."
    if metric in _UNITS:
        unit, fewer, larger = _UNITS[metric]
        return (f"Your draft: {unit.format(_amount(metric, draft))}; this person: "
                f"{unit.format(_amount(metric, person))}. Write {larger if more else fewer}.")
    label = PUNCTUATION[argument][0] if kind == "punctuation" else LABELS.get(metric) or (
        "the words " + ", ".join(f"“{w}”" for w in argument.split("|")) if kind == "uses" else metric)
    per = "" if metric in _SHARES else " per 1,000 words"
    return (f"Your draft has {_amount(metric, draft)} {label}{per}; this person about {_amount(metric, person)}. "
            f"Use {'more' if more else 'fewer'}.")


def deviations(checks: Sequence[FactCheck]) -> list[FactCheck]:
    """The draft's largest deviations from the person: on the contrasted facts where there are any."""
    contrasted = [c for c in checks if c.contrast is not None]
    pool = contrasted or list(checks)
    off = [c for c in pool if abs(c.value - c.target) >= c.spread]
    # Farthest first, with distances capped as adherence caps them: beyond Z_CAP spreads every deviation is plainly
    # off, and the profile's own order (its most distinctive facts first) decides.
    return sorted(off, key=lambda c: -min(abs(c.value - c.target) / c.spread, Z_CAP))[:MAX_DEVIATIONS]


def _score(checks: Sequence[FactCheck], by_margin: bool) -> float | None:
    return facts_margin(checks) if by_margin else facts_adherence(checks)


def kept_words(draft: str, revised: str) -> float:
    """The share of the draft's distinct words that the revision still uses."""
    before = set(content_words(draft))
    return len(before & set(content_words(revised))) / len(before) if before else 1.0


async def arevise(client: LLMClient, task: str, draft: str, facts: Sequence[Fact], *, max_tokens: int,
                  logit_bias: Sequence[TextBias] = ()) -> tuple[str, Revision]:
    """(the text to return, what the revision did): the revision where it measured closer to the person, else the
    draft. One LLM call when the draft deviates; none when it does not."""
    checks = check_facts(draft, facts)
    by_margin = any(c.contrast is not None for c in checks)
    record = Revision(scored_by="margin" if by_margin else "adherence", draft_score=_score(checks, by_margin),
                      draft=draft)
    named = [deviation_text(c) for c in deviations(checks)]
    if not named:
        record.reason = "the draft deviates from none of the person's facts by a spread or more"
        return draft, record
    record.deviations = named
    messages = render_messages("revise", task=task, draft=draft, deviations=named)
    completion = await client.acomplete(CompletionRequest(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                                          logit_bias=list(logit_bias)))
    revised = without_preamble(completion.text)
    record.revised_score = _score(check_facts(revised, facts), by_margin)
    if not revised:
        record.reason = "the revision was empty"
    elif kept_words(draft, revised) < MIN_KEPT_WORDS:
        record.reason = "the revision dropped more than half of the draft's words"
    elif record.revised_score is None or record.draft_score is None or record.revised_score <= record.draft_score:
        record.reason = "the revision measured no closer to the person"
    else:
        record.kept, record.reason = True, "the revision measured closer to the person"
        return revised, record
    return draft, record
