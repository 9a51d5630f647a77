"""Revision (`GenerationOptions.revise`): code measures a draft on the person's facts, one LLM call asks for a
revision that keeps the content and fixes the deviations it names ("Your sentences average 24 words; this person's
average 12."), and code measures the revision the same way. It replaces the draft only when it is measurably closer
to the person — by the margin over the default voice where the facts were measured against it, else by adherence
(adherence.py) — and still says what the draft said (half of the draft's distinct words at least). A small model
that cannot revise therefore costs one call and never a worse text; `Revision` records which way it went.

Which facts: the distinctive ones (measured against the default voice) where the profile has any, a fact being a
deviation where the draft is nearer the default voice's mean than the person's (the margin's negative terms) and half
a spread off the person's at least; else all, a deviation where the draft is a spread off the person's mean at
least. The largest `MAX_DEVIATIONS`
(distances capped at Z_CAP as every margin term is, ties in the profile's order)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from ..llm import CompletionRequest, LLMClient, Message, TextBias
from ..profiles.model import Fact
from ..prompts import render_messages
from .adherence import FactCheck, check_facts, rank_score
from .facts import LABELS, PUNCTUATION, Text, content_words
from .word_use import Z_CAP

MAX_DEVIATIONS = 4
MIN_KEPT_WORDS = 0.5  # the share of the draft's distinct words the revision must still use: it keeps the content
# Said as concrete edits a small model can make: counts in a text of the draft's length, not rates per 1,000 words.
# metric -> (the measure, with {} for the number; the edit where the person's number is higher; where it is lower)
_UNITS = {"sentence_words": ("sentences average {} words", "Write longer sentences.",
                             "Write shorter sentences: split the long ones."),
          "paragraph_sentences": ("paragraphs average {} sentences", "Write longer paragraphs.",
                                  "Write shorter paragraphs: break the long ones."),
          "word_letters": ("words average {} letters", "Use longer words.", "Use shorter, plainer words."),
          "vocabulary": ("about {} different words in every 50", "Vary your words more.", "Repeat words more."),
          "numbers_as_digits": ("{} of numbers written as digits", "Write numbers as digits (7, not seven).",
                                "Spell numbers out in words (seven, not 7)."),
          "lowercase_starts": ("{} of sentences starting in lowercase",
                               "Start some sentences with a lowercase letter, as this person does.",
                               "Start every sentence with a capital letter.")}
_DECIMALS = {"paragraph_sentences": 1, "word_letters": 1}
class Revision(BaseModel):
    """What the revision pass did: the deviations it named, the draft's and the revision's score (margin or
    adherence, `scored_by`), and whether the revision was kept (else the draft stands, and `reason` says why)."""

    deviations: list[str] = []
    scored_by: str = "adherence"
    draft_score: float | None = None
    revised_score: float | None = None
    kept: bool = False
    failed: bool = False  # the revision call failed (the service sends the draft)
    reason: str = ""
    draft: str = ""
    revised: str | None = None  # the model's revision (kept or not), for the record


# A chat model's line before the text ("Here is the revised text:", "Sure! Revised version:"): not the person's words.
_PREAMBLE = re.compile(r"\A\s*(?:here(?: is|'s)|sure|certainly|of course|okay|ok|revised)\b[^\n]{0,80}:[ \t]*\n+",
                       re.IGNORECASE)


def without_preamble(text: str) -> str:
    return _PREAMBLE.sub("", text, count=1).strip()


def _amount(metric: str, value: float) -> str:
    if metric in ("numbers_as_digits", "lowercase_starts"):
        return f"{value:.0%}"
    if metric == "vocabulary":
        return f"{value * 50:.0f}"
    return f"{value:.{_DECIMALS.get(metric, 0)}f}"


def deviation_text(check: FactCheck, words: int) -> str:
    """One named deviation, as the revision prompt says it: what the draft does, what the person does, the edit.
    A rate per 1,000 words is said as counts in a text of the draft's length (`words`)."""
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
        unit, higher, lower = _UNITS[metric]
        return (f"Your draft: {unit.format(_amount(metric, draft))}; this person: "
                f"{unit.format(_amount(metric, person))}. {higher if more else lower}")
    label = PUNCTUATION[argument][0] if kind == "punctuation" else LABELS.get(metric) or (
        "of the words " + " or ".join(f"“{w}”" for w in argument.split("|")) if kind == "uses" else metric)
    have, want = round(draft * words / 1000), round(person * words / 1000)
    if have == want:  # too short a text for whole counts to differ: the rates alone
        return (f"Your draft uses {label} at {draft:.0f} per 1,000 words; this person at {person:.0f}. "
                f"Use {'more' if more else 'fewer'}.")
    edit = f"Add {want - have}." if want > have else f"Remove {have - want}." if want else "Remove them all."
    return f"Your draft has {have} {label}; this person would use about {want} in a text this long. {edit}"


def deviations(checks: Sequence[FactCheck]) -> list[FactCheck]:
    """The draft's largest deviations from the person: on the contrasted facts where there are any."""
    contrasted = [c for c in checks if c.contrast is not None]
    if contrasted:  # on the default voice's side of the fact (as the margin counts it), and half a spread off at least
        off = [c for c in contrasted if abs(c.value - c.contrast) < abs(c.value - c.target)  # type: ignore[operator]
               and abs(c.value - c.target) >= c.spread / 2]
    else:
        off = [c for c in checks if abs(c.value - c.target) >= c.spread]
    # Farthest first, with distances capped as every margin term is: beyond Z_CAP spreads every deviation is plainly
    # off, and the profile's own order (its most distinctive facts first) decides.
    return sorted(off, key=lambda c: -min(abs(c.value - c.target) / c.spread, Z_CAP))[:MAX_DEVIATIONS]


def kept_words(draft: str, revised: str) -> float:
    """The share of the draft's distinct words that the revision still uses."""
    before = set(content_words(draft))
    return len(before & set(content_words(revised))) / len(before) if before else 1.0


def revision_prompt(task: str, draft: str, facts: Sequence[Fact]) -> tuple[list[Message] | None, Revision]:
    """The revision call's messages for `draft`, and its record so far; no messages where it deviates from nothing."""
    checks = check_facts(draft, facts)
    draft_score, scored_by = rank_score(draft, facts)
    record = Revision(scored_by=scored_by, draft_score=draft_score, draft=draft)
    words = len(Text.of(draft).words)
    record.deviations = [deviation_text(c, words) for c in deviations(checks)]
    if not record.deviations:
        record.reason = "the draft deviates from none of the person's distinctive facts"
        return None, record
    return render_messages("revise", task=task, draft=draft, deviations=record.deviations), record


def settle(record: Revision, answer: str, facts: Sequence[Fact]) -> tuple[str, Revision]:
    """(the text to return, the finished record): the model's revision where code measures it closer to the person
    and it keeps the draft's content, else the draft."""
    draft, revised = record.draft, without_preamble(answer)
    record.revised = revised
    record.revised_score = rank_score(revised, facts)[0]
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


async def arevise(client: LLMClient, task: str, draft: str, facts: Sequence[Fact], *, max_tokens: int,
                  logit_bias: Sequence[TextBias] = ()) -> tuple[str, Revision]:
    """(the text to return, what the revision did): the revision where it measured closer to the person, else the
    draft. One LLM call when the draft deviates; none when it does not."""
    messages, record = revision_prompt(task, draft, facts)
    if messages is None:
        return draft, record
    completion = await client.acomplete(CompletionRequest(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                                          logit_bias=list(logit_bias)))
    return settle(record, completion.text, facts)
