"""Step 3: write as the user would. The baselines (zero-shot, few-shot) run through this same function, with the
same template, parameters and backend, so an evaluation compares like with like.

Best-of-N: N candidates — the plain (greedy) output first, then N-1 samples at `sample_temperature` with seeds
seed+1..seed+N-1, so reranking can only improve on the plain output — each scored for adherence to this person (adherence.py: the measured facts by code, optionally the hypotheses by one LLM call each), and the most
adherent returned with its score, every candidate's score and the cost of all of them. For few-shot the facts are
measured from the person's own examples; zero-shot has nothing of the person to rerank by."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from ..errors import InputError
from ..llm import CompletionRequest, LLMClient, Message, backend_seconds
from ..profiles.model import Hypothesis, Profile, UserExample
from ..prompts import render_messages, version_tag
from .adherence import aadherence
from .context import fit_examples
from .facts import style_facts


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
    best_of: int = Field(1, ge=1, le=64)
    sample_temperature: float = Field(0.8, gt=0, le=2)
    # Best-of-N also checks the inferred hypotheses on each candidate (one LLM call per candidate).
    check_hypotheses: bool = False


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
    # Best-of-N: the chosen candidate's adherence, every candidate's score (in sampling order) and how many calls.
    adherence: float | None = None
    candidate_scores: list[float] = []
    llm_calls: int = 1
    # Backend time of the calls (candidates and checks included); None when all came from the cache.
    seconds: float | None = None


def shown_to_generator(profile: Profile, options: GenerationOptions) -> tuple[list[Hypothesis], list[Hypothesis]]:
    """(hypotheses, facts) a generator is shown of the profile: supported ones only (unless asked otherwise), facts
    only when included, hypotheses marked generic last (they describe many people's writing, not this person's)."""
    shown = [h for h in profile.hypotheses if h.supported or options.include_unsupported]
    facts = [h for h in shown if h.measure is not None] if options.include_facts else []
    hypotheses = sorted((h for h in shown if h.measure is None), key=lambda h: h.generic)
    return hypotheses, facts


def build_messages(
    task: str,
    strategy: Strategy | str,
    profile: Profile | None = None,
    examples: list[UserExample] | None = None,
    *,
    context_tokens: int | None = None,
    options: GenerationOptions | None = None,
) -> list[Message]:
    """The generation prompt: one system message (the same the service sends, `system_content`) and the task."""
    strategy = as_strategy(strategy)
    options = options or GenerationOptions()
    if not task.strip():
        raise InputError("the task is empty")
    return render_messages("generate", task=task, **_context(strategy, profile, examples, context_tokens, options))


def system_content(
    strategy: Strategy | str, profile: Profile | None = None, examples: list[UserExample] | None = None, *,
    context_tokens: int | None = None, options: GenerationOptions | None = None,
) -> str:
    """The system message that writes as the person — what `generate` sends before the task and the service before
    a conversation: one rendering for the library, the CLI, every evaluation and the service."""
    return build_messages("(task)", strategy, profile, examples, context_tokens=context_tokens,
                          options=options)[0]["content"]


def _context(strategy: Strategy, profile: Profile | None, examples: list[UserExample] | None,
             context_tokens: int | None, options: GenerationOptions) -> dict[str, Any]:
    if strategy is Strategy.HYPERALIGN and profile is None:
        raise InputError("strategy 'hyperalign' needs a profile")
    if strategy is Strategy.FEW_SHOT:
        if not examples:
            raise InputError("strategy 'few-shot' needs the user's examples (--examples FILE.jsonl)")
        examples, _ = fit_examples(examples, context_tokens, options.max_tokens)
    hypotheses, facts = shown_to_generator(profile, options) if profile is not None else ([], [])
    return {"strategy": strategy.value, "attributes": profile.attributes if profile else {},
            "hypotheses": hypotheses, "facts": facts, "examples": examples or [],
            "contrasted": bool(profile and profile.contrast)}


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
    if options.best_of > 1:
        return await _best_of(client, task, strategy, messages, profile, examples, options)
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
        seconds=completion.seconds,
    )


async def _best_of(
    client: LLMClient, task: str, strategy: Strategy, messages: list[Message], profile: Profile | None,
    examples: list[UserExample] | None, options: GenerationOptions,
) -> Generation:
    # What the reranker may read: this person's profile, or facts measured from this person's own examples.
    if strategy is Strategy.HYPERALIGN and profile is not None:
        facts, hypotheses = profile.facts, profile.inferred_hypotheses
    elif strategy is Strategy.FEW_SHOT and examples:
        facts, hypotheses = style_facts([e.text for e in examples]), []
    else:
        raise InputError("best-of-N reranks by the person's profile or examples; zero-shot has neither")
    if not facts and not (options.check_hypotheses and hypotheses):
        raise InputError("best-of-N needs measured style facts in the profile (infer it again) or --check-hypotheses")
    base_seed = options.seed or 0
    requests = [CompletionRequest(messages=messages, max_tokens=options.max_tokens,
                                  temperature=options.temperature if i == 0 else options.sample_temperature,
                                  seed=base_seed + i)
                for i in range(options.best_of)]
    completions = await asyncio.gather(*(client.acomplete(r) for r in requests))
    checker = client if options.check_hypotheses else None
    scored = await asyncio.gather(*(aadherence(c.text.strip(), facts, hypotheses, client=checker)
                                    for c in completions))
    best = max(range(len(completions)), key=lambda i: scored[i][0].score)  # the first of equals: seed order
    chosen = completions[best]
    checks = [c for _, cs in scored for c in cs]
    return Generation(
        task=task, strategy=strategy, text=chosen.text.strip(), finish_reason=chosen.finish_reason,
        prompt_tokens=sum(c.usage.prompt_tokens for c in [*completions, *checks]),
        completion_tokens=sum(c.usage.completion_tokens for c in [*completions, *checks]),
        cached=all(c.cached for c in completions), model=chosen.model or client.model,
        prompt_version=version_tag("generate"), adherence=scored[best][0].score,
        candidate_scores=[s.score for s, _ in scored], llm_calls=len(completions) + len(checks),
        seconds=backend_seconds([*completions, *checks]),
    )
