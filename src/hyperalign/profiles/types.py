"""The profile's building blocks that depend on no other model class: text and id types, the aspects, the word-use
statistics, and the Wilson bound its scores use (model.py imports them, and they may be imported from there)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..errors import InputError
from ..io import check_text

MAX_USER_ID = 200


def _valid_unicode(value: str) -> str:
    try:
        return check_text(value, "text")
    except InputError as exc:  # a ValueError, so that pydantic names the field
        raise ValueError(str(exc).removeprefix("text: ")) from None


def _user_id(value: str) -> str:
    if not value.strip():
        raise ValueError("the user id is empty")
    if any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise ValueError(f"the user id {value!r} contains a control character")
    return value


# Text that can be stored and encoded: no lone surrogates.
Text = Annotated[str, AfterValidator(_valid_unicode)]
UserId = Annotated[Text, Field(min_length=1, max_length=MAX_USER_ID), AfterValidator(_user_id)]
HypothesisId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,64}$")]


class Aspect(StrEnum):
    """The aspects of a person the paper's hypotheses describe. Callers may add their own (any string)."""

    COMMUNICATION_STRATEGY = "communication_strategy"
    PERSONALITY = "personality"
    WRITING_STYLE = "writing_style"


ASPECT_GUIDANCE: dict[str, str] = {
    Aspect.COMMUNICATION_STRATEGY: "how the person structures and argues: openings, ordering of information, "
    "use of sources or quotations, persuasion, how they address the reader",
    Aspect.PERSONALITY: "the attitudes and temperament the texts show: confidence, humour, skepticism, "
    "warmth, formality, what the person cares about",
    Aspect.WRITING_STYLE: "surface style: sentence length, paragraphing, punctuation, capitalization, "
    "vocabulary and recurring phrases, tense and person",
}


class WordUse(BaseModel):
    """How often the person uses the common words of the genre against the default voice, measured by code
    (pipeline/word_use.py): per word, the mean rate per 1,000 words in the person's texts and in the default voice's,
    and the spread of the rate over all those texts. Statistics of the person's own texts and of model output only:
    what best-of-N's margin scores a candidate by."""

    model_config = ConfigDict(extra="forbid")

    words: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(max_length=400)
    person: list[float]
    voice: list[float]
    spread: list[Annotated[float, Field(gt=0)]]
    texts: int = Field(ge=1, description="the person's texts measured")
    voice_texts: int = Field(ge=1, description="the default voice's texts measured")

    @model_validator(mode="after")
    def _aligned(self) -> WordUse:
        if not len(self.words) == len(self.person) == len(self.voice) == len(self.spread):
            raise ValueError("word_use: words, person, voice and spread must have one value per word")
        return self

    def most_distinctive(self, n: int = 5) -> tuple[list[str], list[str]]:
        """The n words the person uses most above, and the n most below, the default voice (in spreads)."""
        gaps = sorted(((p - v) / s, w) for w, p, v, s in zip(self.words, self.person, self.voice, self.spread,
                                                               strict=True))
        return [w for g, w in reversed(gaps[-n:]) if g > 0], [w for g, w in gaps[:n] if g < 0]

    def markdown(self) -> list[str]:
        """The profile's Markdown section on it (Profile.to_markdown)."""
        more, fewer = self.most_distinctive()
        said = [f"more than a typical answer: {', '.join(more)}" if more else "",
                f"less: {', '.join(fewer)}" if fewer else ""]
        return ["## Word use (measured against a typical answer; best-of-N ranks by it)", "",
                f"- {len(self.words)} common words measured in {self.texts} texts; "
                + ("; ".join(s for s in said if s) or "none stands apart") + ".", ""]


def wilson_lower_bound(successes: int, trials: int, z: float = 1.96) -> float:
    """The lower end of the Wilson score interval of a share (z = 1.96: two-sided 95 %); 0 without trials."""
    if trials == 0:
        return 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - margin) / denominator)  # float error gives -3e-17 at 0 successes
