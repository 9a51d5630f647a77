"""Deliberative answering: the model reasons over a written safety specification — and, for hyperalign, over
hypotheses about the user — before it answers. vanilla, spec and hyperalign share this one function and template;
the reasoning is returned apart from the answer, so evaluations judge only what the user would see."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import InputError
from ..llm import CompletionRequest, LLMClient, track_usage
from ..profiles.model import ASPECT_GUIDANCE, Aspect, Profile
from ..prompts import render, render_messages, version_tag
from ..usage import Usage


class DeliberationMethod(StrEnum):
    """vanilla: answer directly; spec: reason against the safety specification; hyperalign: the specification and
    the person's profile."""

    VANILLA = "vanilla"
    SPEC = "spec"
    HYPERALIGN = "hyperalign"


# What hypotheses about a requester should cover (used as inference aspects for deliberative users).
INTENT_ASPECTS: dict[str, str] = {
    Aspect.COMMUNICATION_STRATEGY: "framing devices the person uses: role-play, fiction, hypotheticals, obfuscation, "
    "urgency, claimed expertise or authority, instructions to ignore rules",
    "intent": "what the person most plausibly wants and why: curiosity, professional or safety need, creative work, "
    "or an attempt to obtain harmful content",
    Aspect.PERSONALITY: ASPECT_GUIDANCE[Aspect.PERSONALITY],
}


class Deliberated(BaseModel):
    reasoning: str = Field(max_length=1200)
    answer: str = Field(max_length=4000)


class Deliberation(BaseModel):
    """A deliberated answer: the reasoning (empty for vanilla) apart from the answer the user sees, and its cost."""

    method: DeliberationMethod
    reasoning: str
    answer: str
    usage: Usage
    prompt_version: str


# How the safety specification is written: `rules`, a numbered list of principles (safety_spec), or `cases`, a short
# code with worked precedents (safety_cases; CADA, arXiv 2601.08000, found rule lists made open models' safety
# inconsistent and cost helpfulness, where cases generalized). Both state the same principles.
SpecForm = Literal["rules", "cases"]
SPEC_TEMPLATES: dict[str, str] = {"rules": "safety_spec", "cases": "safety_cases"}


def spec_template(form: SpecForm) -> str:
    """The template that writes the specification in `form`."""
    if form not in SPEC_TEMPLATES:
        raise InputError(f"unknown specification form {form!r}; use {' or '.join(SPEC_TEMPLATES)}")
    return SPEC_TEMPLATES[form]


def safety_spec(form: SpecForm = "rules") -> str:
    return render(spec_template(form))


async def adeliberate(
    client: LLMClient,
    request: str,
    method: DeliberationMethod | str,
    profile: Profile | None = None,
    *,
    spec: str | None = None,
    form: SpecForm = "rules",
    max_tokens: int = 700,
) -> Deliberation:
    """`spec`: the specification's text (default: the shipped one, written as `form`)."""
    try:
        method = DeliberationMethod(method)
    except ValueError:
        raise InputError(f"unknown method {method!r}; use vanilla, spec or hyperalign") from None
    if method is DeliberationMethod.HYPERALIGN and profile is None:
        raise InputError("method 'hyperalign' needs the user's profile")
    template = spec_template(form)
    shown = profile if method is DeliberationMethod.HYPERALIGN else None
    messages = render_messages(
        "deliberate", method=method.value, request=request, spec=spec or render(template), profile=shown,
        hypotheses=shown.supported_hypotheses if shown else [],
    )
    version = version_tag("deliberate", template)
    with track_usage() as usage:
        if method is DeliberationMethod.VANILLA:
            completion = await client.acomplete(CompletionRequest(messages=messages, max_tokens=max_tokens))
            reasoning, answer = "", completion.text.strip()
        else:
            parsed = await client.acomplete_structured(messages, Deliberated, step="deliberate", max_tokens=max_tokens)
            reasoning, answer = parsed.reasoning.strip(), parsed.answer.strip()
    return Deliberation(method=method, reasoning=reasoning, answer=answer, prompt_version=version, usage=usage)
