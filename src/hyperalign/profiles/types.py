"""The profile's building blocks that depend on no model class: text and id types, the aspects, and the Wilson
bound its scores use (model.py imports them, and they may be imported from there)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

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


def wilson_lower_bound(successes: int, trials: int, z: float = 1.96) -> float:
    """The lower end of the Wilson score interval of a share (z = 1.96: two-sided 95 %); 0 without trials."""
    if trials == 0:
        return 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - margin) / denominator)  # float error gives -3e-17 at 0 successes
