"""Step 3: write as the user would. The baselines (zero-shot, few-shot) run through this same function, with the
same template, parameters and backend, so an evaluation compares like with like."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from ..errors import InputError
from ..llm import CompletionRequest, LLMClient, Message
from ..profiles.model import Profile, UserExample
from ..prompts import render_messages, version_tag
from .context import fit_examples


class Strategy(StrEnum):
    HYPERALIGN = "hyperalign"
    FEW_SHOT = "few-shot"
    ZERO_SHOT = "zero-shot"


def as_strategy(value: Strategy | str) -> Strategy:
    try:
        return Strategy(value)
    except ValueError:
        raise InputError(f"unknown strategy {value!r}; use one of: {', '.join(s.value for s in Strategy)}") from None


class GenerationOptions(BaseModel):
    max_tokens: int = 600
    temperature: float = 0.0
    seed: int | None = 0
    # Unsupported hypotheses are never shown to the generator, even when a profile keeps them for review.
    include_unsupported: bool = False
    # Show the measured style facts (their numbers) to the generator, beside the hypotheses.
    include_facts: bool = True


class Generation(BaseModel):
    task: str
    strategy: Strategy
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    model: str
    prompt_version: str


def build_messages(
    task: str,
    strategy: Strategy | str,
    profile: Profile | None = None,
    examples: list[UserExample] | None = None,
    *,
    context_tokens: int | None = None,
    options: GenerationOptions | None = None,
) -> list[Message]:
    strategy = as_strategy(strategy)
    options = options or GenerationOptions()
    if not task.strip():
        raise InputError("the task is empty")
    if strategy is Strategy.HYPERALIGN and profile is None:
        raise InputError("strategy 'hyperalign' needs a profile")
    if strategy is Strategy.FEW_SHOT:
        if not examples:
            raise InputError("strategy 'few-shot' needs the user's examples (--examples FILE.jsonl)")
        examples, _ = fit_examples(examples, context_tokens, options.max_tokens)
    hypotheses, facts = [], []
    if profile is not None:
        shown = [h for h in profile.hypotheses if h.supported or options.include_unsupported]
        facts = [h for h in shown if h.measure is not None] if options.include_facts else []
        hypotheses = [h for h in shown if h.measure is None]
    return render_messages(
        "generate", strategy=strategy.value, task=task, profile=profile, hypotheses=hypotheses, facts=facts,
        examples=examples or [],
    )


async def agenerate(
    client: LLMClient,
    task: str,
    strategy: Strategy | str = Strategy.HYPERALIGN,
    *,
    profile: Profile | None = None,
    examples: list[UserExample] | None = None,
    options: GenerationOptions | None = None,
) -> Generation:
    options = options or GenerationOptions()
    strategy = as_strategy(strategy)
    messages = build_messages(
        task, strategy, profile, examples, context_tokens=client.backend.context_tokens, options=options
    )
    request = CompletionRequest(
        messages=messages, max_tokens=options.max_tokens, temperature=options.temperature, seed=options.seed
    )
    completion = await client.acomplete(request)
    return Generation(
        task=task,
        strategy=strategy,
        text=completion.text.strip(),
        finish_reason=completion.finish_reason,
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens,
        cached=completion.cached,
        model=completion.model or client.model,
        prompt_version=version_tag("generate"),
    )
