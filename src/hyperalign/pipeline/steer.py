"""Steering: the profile's measured facts applied while and after the model writes, not only stated in its prompt.

A small instruction-tuned model does not follow "this person never uses exclamation marks" or "opens with 'Right
then.'" when it reads them (StyleMC, arXiv 2312.17242: style lives in token choices the model finds unlikely). So
the facts that say how the person differs from the default voice become levers, each applied the surest way the
backend allows and each recorded with how it was applied:
- the opening the person uses in most texts: put in front of the text by code where the model did not write it, or,
  asked for (`opening="prefill"`) and where the backend continues a given start, written for the model as the
  start of its answer;
- the sign-off the person uses in most texts: put at the end by code where the text lacks it;
- code edits (edits.py): punctuation the person never uses and the default voice does replaced, and contractions
  written out or contracted where the person never or far more often uses them;
- token biases (backend capability `logit_bias`): up for the person's distinctive words and, where the person uses
  them far more than the default voice, punctuation, contractions and first- or second-person pronouns; down for
  the words the default voice leans on and the person never uses; strongly down for punctuation the person never
  uses; the full stop up for a person of shorter sentences than the default voice's, down for longer ones. Biases
  are said in text (`TextBias`); the backend maps them onto its own vocabulary. A backend without the capability
  gets none, and the plan says so.

`off` applies nothing; `light` nudges and discourages; `strong` pushes harder and bans never-used punctuation.
Only the hyperalign strategy is steered (the baselines have no profile)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import parse_choice
from ..llm import Capabilities, TextBias
from ..profiles.model import Measure, Profile, WordUse
from .edits import CHARACTER_EDITS, DESCRIBED, PUNCTUATION_EDITS, Edit, apply_edits
from .facts import FIRST_PERSON, LABELS, SECOND_PERSON, measure

# The facts' punctuation metrics (facts.PUNCTUATION) as the characters a bias can reach. Commas are left out: no
# text is written without them, and a person's "never" in a few texts would be a ban the task cannot live with.
PUNCTUATION_CHARACTERS: dict[str, tuple[str, ...]] = {
    "exclamation": ("!",), "question": ("?",), "semicolon": (";",), "colon": (":",), "dash": ("—", "–"),
    "ellipsis": ("…", "..."), "parenthesis": ("(", ")"), "quote": ('"', "“", "”"),
}
# What byte-level vocabularies write contractions with ("don't" is "don" + "'t"); "'s" is left out (possessives).
CONTRACTION_PIECES = ("'t", "'re", "'ve", "'ll", "'m", "'d", "’t", "’re", "’ve", "’ll", "’m", "’d")
PRONOUNS = {"first_person": tuple(sorted(FIRST_PERSON)), "second_person": tuple(sorted(SECOND_PERSON))}
HABIT_SHARE = 0.5  # an opening or sign-off is applied when at least this share of the person's texts have it
STANDS_APART = 1.0  # |z| at which a rate counts as the person's own (the facts' own threshold)


# How the opening is applied. Code by default: on the embedded 135M model a prefilled opening derailed the text
# (off task, and once its own prompt echoed back) where the same opening put in front by code did not
# (benchmarks/results/steering-demo-*.md).
OpeningMode = Literal["code", "prefill"]


class SteerLevel(StrEnum):
    OFF = "off"
    LIGHT = "light"
    STRONG = "strong"


class Strength(BaseModel):
    words_up: float
    words_down: float
    never_punctuation: float
    more_punctuation: float


STRENGTHS = {
    SteerLevel.LIGHT: Strength(words_up=1.5, words_down=-3.0, never_punctuation=-6.0, more_punctuation=0.7),
    SteerLevel.STRONG: Strength(words_up=3.0, words_down=-8.0, never_punctuation=-100.0, more_punctuation=1.5),
}


def as_steer_level(value: SteerLevel | str) -> SteerLevel:
    return parse_choice(SteerLevel, value, "steering level")


class Lever(BaseModel):
    """One fact turned into an action, and how it is applied."""

    metric: str  # the fact's metric (facts.py): which habit the lever serves
    fact_id: str = ""  # the fact's id in the profile
    what: str
    how: Literal["prefill", "code", "steering"]

    def __str__(self) -> str:
        return f"{self.what}: {self.how}"


class Steering(BaseModel):
    level: SteerLevel = SteerLevel.OFF
    biases: list[TextBias] = Field(default_factory=list)
    opening: str | None = None
    prefill: bool = False  # the opening is given to the model as its answer's start (else put in front by code)
    sign_off: str | None = None
    edits: list[Edit] = Field(default_factory=list)  # code edits of the written text (edits.py)
    levers: list[Lever] = Field(default_factory=list)
    # Levers the profile asks for that this backend cannot pull, said once by the caller.
    unavailable: list[str] = Field(default_factory=list)


def _words(metric: str) -> list[str]:
    return metric.partition(":")[2].split("|")


def _token_biases(m: Measure, strength: Strength) -> tuple[list[TextBias], str | None]:
    """The biases one fact asks for, and the lever's description (None when the fact asks for none)."""
    if m.z is None or m.contrast_mean is None:
        # Measured without a contrast (the paper method): a rate says nothing of how the person differs from the
        # default voice, and its "uses" words are frequent against general English — often the topic's (names from
        # the essays' subjects), which a bias would make the model copy.
        return [], None
    kind, _, argument = m.metric.partition(":")
    never = m.mean == 0 and m.contrast_mean > 0
    apart = m.z >= STANDS_APART
    if kind == "uses":
        up = m.z > 0
        bias = strength.words_up if up else strength.words_down
        words = _words(m.metric)
        listed = ", ".join(f"“{w}”" for w in words)
        return [TextBias(text=w, bias=bias) for w in words], f"words {'favoured' if up else 'avoided'} {listed}"
    if kind == "punctuation" and argument in PUNCTUATION_CHARACTERS:
        characters = PUNCTUATION_CHARACTERS[argument]
        shown = " ".join(f"‘{c}’" for c in characters)
        if never:
            verb = "banned" if strength.never_punctuation <= -100 else "suppressed"
            return [TextBias(text=c, kind="character", bias=strength.never_punctuation) for c in characters], \
                f"{shown} {verb}"
        if apart:
            return [TextBias(text=c, bias=strength.more_punctuation) for c in characters], f"more {shown}"
    if m.metric == "sentence_words" and abs(m.z) >= STANDS_APART:
        # Shorter sentences than the default voice's: a full stop comes sooner; longer ones: later.
        shorter = m.z < 0
        bias = strength.more_punctuation if shorter else -strength.more_punctuation
        return [TextBias(text=".", bias=bias)], f"{'shorter' if shorter else 'longer'} sentences (full stop nudged)"
    if m.metric in PRONOUNS and (never or apart):
        bias = strength.words_down if never else strength.words_up
        return [TextBias(text=w, bias=bias) for w in PRONOUNS[m.metric]], \
            f"{LABELS[m.metric]} {'avoided' if never else 'favoured'}"
    if m.metric == "contractions" and (never or apart):
        bias = strength.words_down if never else strength.words_up
        return [TextBias(text=p, bias=bias) for p in CONTRACTION_PIECES], \
            f"contractions {'avoided' if never else 'favoured'}"
    return [], None


def _code_edit(m: Measure) -> Edit | None:
    """The text edit a contrasted fact asks for (edits.py): never-used punctuation replaced, contractions written
    out for a person who never uses them, or contracted for one who uses them far more than the default voice."""
    if m.z is None or m.contrast_mean is None:
        return None
    kind, _, argument = m.metric.partition(":")
    never = m.mean == 0 and m.contrast_mean > 0
    if kind == "punctuation" and never:
        return PUNCTUATION_EDITS.get(argument)
    if m.metric == "contractions" and (never or m.z >= STANDS_APART):
        return "expand-contractions" if never else "use-contractions"
    return None


def for_stream(steering: Steering) -> Steering:
    """The steering a stream can carry: the edits that act piece by piece (edits.CHARACTER_EDITS), and the levers
    of what it applies."""
    kept = [e for e in steering.edits if e in CHARACTER_EDITS]
    dropped = {DESCRIBED[e] for e in steering.edits if e not in kept}
    return steering.model_copy(update={"edits": kept, "levers": [
        lever for lever in steering.levers if not (lever.how == "code" and lever.what in dropped)]})


def plan(profile: Profile | None, level: SteerLevel | str, capabilities: Capabilities, *,
         opening: OpeningMode = "code", words: SteerLevel | str = SteerLevel.OFF) -> Steering:
    """The levers this profile's facts ask for at this level, on a backend that can do `capabilities`; the opening
    by prefill only where asked and the backend can (else by code); and, at the `words` level, the word-use biases
    (word_biases)."""
    level, words = as_steer_level(level), as_steer_level(words)
    if profile is None:
        return Steering(level=level)
    if level is SteerLevel.OFF:
        return _with_word_use(Steering(level=level), profile, words, capabilities)
    strength = STRENGTHS[level]
    steering = Steering(level=level)
    wanted_bias = False
    for fact in profile.facts:
        m = fact.measure
        kind, _, edge = m.metric.partition(":")
        lever = {"metric": m.metric, "fact_id": fact.id}
        habitual = m.mean >= HABIT_SHARE and (m.z is None or m.z > 0)
        if kind == "opens_with" and habitual and steering.opening is None:
            steering.opening, steering.prefill = edge, opening == "prefill" and capabilities.prefill
            steering.levers.append(Lever(**lever, what=f"opening “{edge}”",
                                         how="prefill" if steering.prefill else "code"))
        elif kind == "ends_with" and habitual and steering.sign_off is None:
            steering.sign_off = edge
            steering.levers.append(Lever(**lever, what=f"sign-off “{edge}”", how="code"))
        else:
            edit = _code_edit(m)
            if edit is not None and edit not in steering.edits:
                steering.edits.append(edit)
                steering.levers.append(Lever(**lever, what=DESCRIBED[edit], how="code"))
            biases, described = _token_biases(m, strength)
            if not biases or described is None:
                continue
            wanted_bias = True
            if capabilities.logit_bias:
                steering.biases.extend(biases)
                steering.levers.append(Lever(**lever, what=described, how="steering"))
    if wanted_bias and not capabilities.logit_bias:
        steering.unavailable.append("token steering: this backend takes no logit bias, so the profile's word and "
                                    "punctuation habits are only stated in the prompt")
    return _with_word_use(steering, profile, words, capabilities)


# The largest word-use bias, in logits, by level: a nudge toward the person's rates of common words, not a ban.
WORD_USE_CAPS = {SteerLevel.LIGHT: 1.0, SteerLevel.STRONG: 2.0}


def word_biases(use: WordUse, cap: float) -> list[TextBias]:
    """Biases from the person's word use against the default voice (word_use.py): for each word whose rates stand
    apart (by STANDS_APART spreads), ln((person + 1) / (default + 1)) per 1,000 words, within ±cap: up for the words
    the person uses more than the model, down for those the model leans on. Delta (the evaluation's metric) and
    the reranker's margin read these same rates — which is why this lever is measured by masked attribution too."""
    biases = []
    for word, person, voice, spread in zip(use.words, use.person, use.voice, use.spread, strict=True):
        if abs(person - voice) / spread >= STANDS_APART:
            bias = max(-cap, min(cap, math.log((person + 1) / (voice + 1))))
            biases.append(TextBias(text=word, bias=round(bias, 2)))
    return biases


def _with_word_use(steering: Steering, profile: Profile, words: SteerLevel, capabilities: Capabilities) -> Steering:
    if words is SteerLevel.OFF or profile.word_use is None:
        return steering
    if not capabilities.logit_bias:
        steering.unavailable.append("word-use steering: this backend takes no logit bias")
        return steering
    taken = {b.text for b in steering.biases}  # a fact's own bias on a word stands
    added = [b for b in word_biases(profile.word_use, WORD_USE_CAPS[words]) if b.text not in taken]
    if added:
        steering.biases.extend(added)
        up = sum(b.bias > 0 for b in added)
        steering.levers.append(Lever(metric="word_use", what=f"word use: {up} words favoured, {len(added) - up} "
                                     "avoided", how="steering"))
    return steering


def _own_line(opening: str) -> bool:
    # An opening that ends a sentence or a salutation ("Right then.", "Hi all,") stands on its own line; one that
    # does not ("So basically") runs on into the text.
    return opening.endswith((".", "!", "?", ",", ":", ";"))


def prefill_text(steering: Steering) -> str | None:
    """What the model is given as its answer's start, where the backend continues one."""
    if not steering.opening or not steering.prefill:
        return None
    return steering.opening + ("\n\n" if _own_line(steering.opening) else "")


def finish(text: str, steering: Steering) -> str:
    """The text with the steering's code edits (edits.py), and the opening and sign-off it applies by code where
    the model did not write them."""
    text = apply_edits(text, steering.edits)
    if steering.opening and not measure(f"opens_with:{steering.opening}", text):
        joiner = "\n\n" if _own_line(steering.opening) else " "
        text = f"{steering.opening}{joiner}{text.lstrip()}"
    if steering.sign_off and not measure(f"ends_with:{steering.sign_off}", text):
        text = f"{text.rstrip()}\n\n{steering.sign_off}"
    return text
