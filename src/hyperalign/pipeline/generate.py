"""Step 3: write as the user would. The baselines (zero-shot, few-shot) run through this same function, with the
same template, parameters and backend, so an evaluation compares like with like.

Best-of-N: N candidates — the plain (greedy) output first, then N-1 samples at `sample_temperature` with seeds
seed+1..seed+N-1, so reranking can only improve on the plain output — each scored against this person
(adherence.py): by default, where the profile measured the person's word use against the default voice, by the
word-use margin (word_use.py) — how much closer the candidate's rates of common words are to the person's than to
the default voice's; else, where the facts were measured against it, by the facts' margin; else by adherence
(the measured facts by code, optionally the hypotheses by one LLM call each). The best is returned with its
adherence, every candidate's ranking score and the cost of all of them. For few-shot the facts are measured from the
person's own examples (no contrast: adherence); zero-shot has nothing of the person to rerank by.

Copy guard (hyperalign only; the baselines stay what they are): the prompt shows the person's own words — quoted
evidence, its voice samples (or `excerpts` chosen from the examples), with `example_texts` whole texts — and a small model hands them back verbatim, which stylometry then
credits as style. A text whose share of word 8-grams repeating the system prompt (text.copy_stats) is above
`max_copied` is written again, sampled, up to `copy_retries` times, and where every try still copies and the prompt
showed the person's texts or sentences, once more without them; the least-copying text is kept (the first of
equals), and best-of-N ranks every candidate under the limit above any over it. `Generation.copy_rate` and
`rewrites` say what happened.

Revision (`revise`, hyperalign only): after the text is chosen, one more call revises it towards the facts it misses
(revise.py); the revision replaces it only where code measures it closer to the person and it passes the copy guard.
`Generation.revision` says what happened."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, parse_choice
from ..llm import Completion, CompletionRequest, LLMClient, Message, track_usage
from ..profiles.model import Fact, Hypothesis, Profile, UserExample
from ..prompts import render_messages, version_tag
from ..text import copy_stats
from ..usage import Usage
from .adherence import aadherence, ranked_by, word_rank
from .context import TokenCounter, fit_examples, token_counter
from .examples import closest_examples
from .excerpts import characteristic_sentences
from .facts import style_facts
from .revise import Revision, arevise
from .steer import Lever, OpeningMode, Steering, SteerLevel, finish, plan, prefill_text

log = logging.getLogger(__name__)
_SAID: set[str] = set()


class Strategy(StrEnum):
    """How a text is written: from the person's profile (hyperalign), from their example texts (few-shot, the
    baseline), or from the task alone (zero-shot)."""

    HYPERALIGN = "hyperalign"
    FEW_SHOT = "few-shot"
    ZERO_SHOT = "zero-shot"


def as_strategy(value: Strategy | str) -> Strategy:
    return parse_choice(Strategy, value, "strategy")


class GenerationOptions(BaseModel):
    """How a text is written; passed per call (`HyperAlign.generate(..., options=...)`)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(600, ge=1, description="the longest text, in tokens")
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature (0: greedy)")
    seed: int | None = Field(0, description="the sampling seed, where the backend takes one")
    include_unsupported: bool = Field(False, description="also show hypotheses whose quotes were not found (kept "
                                      "for review; never shown by default)")
    include_facts: bool = Field(True, description="show the measured style facts beside the hypotheses")
    best_of: int = Field(1, ge=1, le=64, description="write N candidates and return the most adherent")
    sample_temperature: float = Field(0.8, gt=0, le=2, description="best-of-N: the samples' temperature")
    check_hypotheses: bool = Field(False, description="best-of-N also checks the hypotheses on each candidate "
                                   "(one LLM call each)")
    rerank: Literal["auto", "word-margin", "margin", "adherence"] = Field(
        "auto", description="best-of-N: by the margin over the default voice in common-word use (word_use.py), by the "
        "margin on the distinctive facts (adherence.py), by adherence, or auto: the first the profile can give")
    # Apply the profile's facts while and after the model writes (steer.py): opening, sign-off, token biases.
    steer: SteerLevel = Field(SteerLevel.LIGHT, description="off, light or strong (hyperalign strategy only)")
    steer_words: SteerLevel = Field(SteerLevel.OFF, description="token biases toward the person's rates of common "
                                    "words against the default voice (steer.word_biases; hyperalign strategy only)")
    opening: OpeningMode = Field("code", description="the person's habitual opening: put in front by code, or "
                                 "prefilled where the backend continues a given start")
    example_texts: int = Field(0, ge=0, le=8, description="hyperalign: also show the K of the person's texts most "
                               "similar to the task (examples.py); needs the examples")
    excerpts: int | None = Field(
        None, ge=0, le=24, description="hyperalign: the person's own sentences shown beside the profile. None: the "
        "profile's voice samples (chosen at inference); 0: none; N: the N sentences of the examples given that carry "
        "their habits most against the default voice (excerpts.py), else the profile's first N voice samples")
    max_copied: float = Field(0.05, ge=0, le=1, description="hyperalign: the largest share of the text's word 8-grams "
                              "that may repeat the prompt (the person's quoted and shown texts); 1 turns the guard off")
    copy_retries: int = Field(2, ge=0, le=8, description="hyperalign: sampled rewrites of a text over `max_copied`")
    revise: bool = Field(False, description="hyperalign: one more call revises the text towards the person's measured "
                         "facts it deviates from; kept only where it measures closer (revise.py)")


class Generation(BaseModel):
    """A text written for `task`, with what it cost (`usage`: every call, best-of's candidates and checks included)
    and how the profile was applied."""

    task: str
    strategy: Strategy
    text: str
    finish_reason: str
    usage: Usage
    model: str
    prompt_version: str
    # Best-of-N: the chosen candidate's adherence, every candidate's ranking score (in sampling order), and which
    # score ranked them ("margin" or "adherence").
    adherence: float | None = None
    candidate_scores: list[float] = []
    reranked_by: str | None = None
    # Steering (steer.py): the level, and each lever applied: the habit's metric, what and how (prefill, code or
    # token steering).
    steer: SteerLevel = SteerLevel.OFF
    levers: list[Lever] = []
    # Copy guard (hyperalign): the share of the text's word 8-grams that repeat the prompt, and the rewrites it took.
    copy_rate: float | None = None
    rewrites: int = 0
    without_shown_texts: bool = False  # the kept text was written without the person's shown texts (the last try)
    revision: Revision | None = None  # the revision pass, where asked (hyperalign)


# Settings only the hyperalign strategy reads (the baselines stay what they are), and those only best-of-N reads.
PROFILE_ONLY_SETTINGS = ("steer", "steer_words", "opening", "example_texts", "excerpts", "max_copied", "copy_retries", "revise")
_BEST_OF_ONLY = ("rerank", "check_hypotheses", "sample_temperature")


def unused_settings(strategy: Strategy | str, options: GenerationOptions) -> list[str]:
    """The settings of `options` changed from their defaults that writing with `strategy` would ignore — a request
    the caller believes was applied and was not (`--steer strong` for zero-shot, `--rerank` without best-of). `steer`
    off is no change for a baseline: it is never steered."""
    given, default = options.model_dump(), GenerationOptions().model_dump()
    ignored = [] if as_strategy(strategy) is Strategy.HYPERALIGN else list(PROFILE_ONLY_SETTINGS)
    ignored += list(_BEST_OF_ONLY) if options.best_of == 1 else []
    return [name for name in ignored if given[name] != default[name]
            and not (name == "steer" and options.steer is SteerLevel.OFF)]


def shown_to_generator(profile: Profile, options: GenerationOptions) -> tuple[list[Hypothesis], list[Fact]]:
    """(hypotheses, facts) a generator is shown of the profile: supported hypotheses only (unless asked otherwise),
    marked generic ones last (they describe many people's writing, not this person's); facts only when included."""
    shown = [h for h in profile.hypotheses if h.supported or options.include_unsupported]
    hypotheses = sorted(shown, key=lambda h: h.generic)
    return hypotheses, list(profile.facts) if options.include_facts else []


def build_messages(
    task: str,
    strategy: Strategy | str,
    profile: Profile | None = None,
    examples: list[UserExample] | None = None,
    *,
    context_tokens: int | None = None,
    options: GenerationOptions | None = None,
    count_tokens: TokenCounter | None = None,
) -> list[Message]:
    """The generation prompt: one system message (the same the service sends, `system_content`) and the task.
    Examples are fitted into `context_tokens`, counted by `count_tokens` where the backend can count."""
    strategy = as_strategy(strategy)
    options = options or GenerationOptions()
    if not task.strip():
        raise InputError("the task is empty")
    return render_messages("generate", task=task,
                           **_context(task, strategy, profile, examples, context_tokens, options, count_tokens))


def system_content(
    strategy: Strategy | str, profile: Profile | None = None, examples: list[UserExample] | None = None, *,
    context_tokens: int | None = None, options: GenerationOptions | None = None, task: str = "(task)",
) -> str:
    """The system message that writes as the person — what `generate` sends before the task and the service before
    a conversation: one rendering for the library, the CLI, every evaluation and the service. The task is not in it;
    it only chooses the texts shown with `example_texts`."""
    return build_messages(task, strategy, profile, examples, context_tokens=context_tokens,
                          options=options)[0]["content"]


def _context(task: str, strategy: Strategy, profile: Profile | None, examples: list[UserExample] | None,
             context_tokens: int | None, options: GenerationOptions,
             count_tokens: TokenCounter | None) -> dict[str, Any]:
    if strategy is Strategy.HYPERALIGN and profile is None:
        raise InputError("strategy 'hyperalign' needs a profile")
    given = examples
    if strategy is Strategy.FEW_SHOT:
        if not examples:
            raise InputError("strategy 'few-shot' needs the user's examples")
        examples, _ = fit_examples(examples, context_tokens, options.max_tokens, count_tokens)
    elif strategy is Strategy.HYPERALIGN and options.example_texts:
        if not examples:
            raise InputError(f"showing {options.example_texts} of the person's texts beside the profile needs "
                             "the user's examples")
        examples, _ = fit_examples(closest_examples(task, examples, options.example_texts), context_tokens,
                                   options.max_tokens, count_tokens)
    else:
        examples = []  # the profile alone (the examples may be given all the same: the evaluation passes them)
    hypotheses, facts = shown_to_generator(profile, options) if profile is not None else ([], [])
    return {"strategy": strategy.value, "attributes": profile.attributes if profile else {},
            "hypotheses": hypotheses, "facts": facts, "examples": examples or [],
            "excerpts": own_sentences(strategy, profile, given, options),
            "contrasted": bool(profile and profile.contrast)}


def own_sentences(strategy: Strategy, profile: Profile | None, examples: list[UserExample] | None,
                  options: GenerationOptions) -> list[str]:
    """The person's sentences the prompt shows beside the profile (`GenerationOptions.excerpts`)."""
    if strategy is not Strategy.HYPERALIGN or profile is None or options.excerpts == 0:
        return []
    stored = [sample.text for sample in profile.voice_samples]
    if options.excerpts is None:
        return stored
    if examples:
        return characteristic_sentences([e.text for e in examples], profile.contrast_texts, options.excerpts)
    if stored:
        return stored[:options.excerpts]
    raise InputError(f"showing {options.excerpts} of the person's sentences beside the profile needs the user's "
                     "examples (this profile keeps no voice samples)")


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
        task, strategy, profile, examples, context_tokens=client.backend.context_tokens, options=options,
        count_tokens=token_counter(client),
    )
    steering = steering_for(client, strategy, profile, options)
    if options.revise and strategy is not Strategy.HYPERALIGN:
        raise InputError("revise measures the text on the person's profile: it needs the 'hyperalign' strategy")
    if options.revise and profile is not None and not profile.facts:
        raise InputError("revise needs measured style facts in the profile (infer it again)")
    if options.best_of > 1:
        generation = await _best_of(client, task, strategy, messages, profile, examples, options, steering)
    else:
        # The last resort of the copy guard: the prompt without the person's shown texts (the profile stays). Built
        # only if it comes to that: most texts pass the guard at once, and the build counts tokens again.
        def plain() -> list[Message]:
            return build_messages(task, strategy, profile, examples, context_tokens=client.backend.context_tokens,
                                  options=options.model_copy(update={"example_texts": 0, "excerpts": 0}),
                                  count_tokens=token_counter(client))

        shows = bool(options.example_texts or own_sentences(strategy, profile, examples, options))
        generation = await _written(client, task, strategy, messages, options, steering, plain if shows else None)
    if options.revise and profile is not None:
        generation = await _revised(client, generation, profile, messages, options, steering)
    return generation


async def _written(client: LLMClient, task: str, strategy: Strategy, messages: list[Message],
                   options: GenerationOptions, steering: Steering,
                   plain: Callable[[], list[Message]] | None = None) -> Generation:
    """One text, written again (sampled) while it copies the prompt over the limit; where every try still copies
    and the prompt showed the person's texts, once more without them (`plain` builds that prompt), greedy."""
    guard = _copy_guard(strategy, messages, options)
    base_seed = options.seed or 0
    # The rewrites: sampled, then (where texts were shown) greedy without them; each try's prompt, its temperature,
    # its seed, and whether it is the prompt without the shown texts.
    tries: list[tuple[Callable[[], list[Message]], float, int | None, bool]] = [
        (lambda: messages, options.sample_temperature, base_seed + i, False)
        for i in range(1, options.copy_retries + 1)]
    if plain is not None and options.copy_retries:
        tries.append((plain, options.temperature, options.seed, True))
    with track_usage() as usage:
        completion = await client.acomplete(_request(messages, options, steering, options.temperature, options.seed))
        text = finish(completion.text.strip(), steering)
        copied = guard(text)
        rewrites, without_shown = 0, False
        for prompt, temperature, seed, drops_shown in tries:
            if copied is None or copied <= options.max_copied:
                break
            rewrites += 1
            retry = await client.acomplete(_request(prompt(), options, steering, temperature, seed))
            retry_text = finish(retry.text.strip(), steering)
            retry_copied = guard(retry_text)  # always against what the first prompt showed
            if retry_copied is not None and retry_copied < copied:
                completion, text, copied, without_shown = retry, retry_text, retry_copied, drops_shown
    return Generation(
        task=task,
        strategy=strategy,
        text=text,
        finish_reason=completion.finish_reason,
        usage=usage,
        model=completion.model or client.model,
        prompt_version=version_tag("generate"),
        steer=steering.level,
        levers=applied_levers(steering, [completion]),
        copy_rate=copied,
        rewrites=rewrites,
        without_shown_texts=without_shown,
    )


async def _revised(client: LLMClient, generation: Generation, profile: Profile, messages: list[Message],
                   options: GenerationOptions, steering: Steering) -> Generation:
    """The generation after the revision pass (revise.py): the code levers applied again to a kept revision, and
    the copy guard's limit held (a revision that copies the prompt is not kept either)."""
    with track_usage() as usage:
        text, revision = await arevise(client, generation.task, generation.text, profile.facts,
                                       max_tokens=options.max_tokens, logit_bias=steering.biases)
    copied = generation.copy_rate
    if revision.kept:
        text = finish(text, steering)
        revised_copied = _copy_guard(Strategy.HYPERALIGN, messages, options)(text)
        if revised_copied is not None and revised_copied > options.max_copied:
            text = generation.text
            revision.kept = False
            revision.reason = f"the revision repeated {revised_copied:.0%} of the prompt's word 8-grams"
        else:
            copied = revised_copied
    return generation.model_copy(update={"text": text, "copy_rate": copied, "revision": revision,
                                         "usage": generation.usage + usage})


def applied_levers(steering: Steering, completions: list[Completion]) -> list[Lever]:
    """The steering's levers, less the token biases where the backend could not apply them (a server without a
    tokenizer, llm/server_tokens.py): a generation claims only what acted on it."""
    if any(c.bias_dropped for c in completions):
        return [lever for lever in steering.levers if lever.how != "steering"]
    return steering.levers


def _copy_guard(strategy: Strategy, messages: list[Message], options: GenerationOptions,
                ) -> Callable[[str], float | None]:
    """The share of a text's word 8-grams found in the system prompt, for hyperalign with the guard on; else None."""
    if strategy is not Strategy.HYPERALIGN or options.max_copied >= 1:
        return lambda text: None
    shown = [str(m["content"]) for m in messages if m["role"] == "system"]
    return lambda text: round(copy_stats(text, shown)["copy_rate"], 4)


def steering_for(client: LLMClient, strategy: Strategy, profile: Profile | None,
                 options: GenerationOptions) -> Steering:
    """The steering a generation gets: the profile's levers for the hyperalign strategy, none for the baselines."""
    if strategy is not Strategy.HYPERALIGN:
        return Steering()
    steering = plan(profile, options.steer, client.backend.capabilities, opening=options.opening,
                    words=options.steer_words)
    for reason in steering.unavailable:
        if reason not in _SAID:  # once per process, not once per generation
            _SAID.add(reason)
            log.warning("%s", reason)
    return steering


def _request(messages: list[Message], options: GenerationOptions, steering: Steering, temperature: float,
             seed: int | None) -> CompletionRequest:
    return CompletionRequest(messages=messages, max_tokens=options.max_tokens, temperature=temperature, seed=seed,
                             logit_bias=steering.biases,
                             prefill=prefill_text(steering))


async def _best_of(
    client: LLMClient, task: str, strategy: Strategy, messages: list[Message], profile: Profile | None,
    examples: list[UserExample] | None, options: GenerationOptions, steering: Steering,
) -> Generation:
    # What the reranker may read: this person's profile, or facts measured from this person's own examples.
    if strategy is Strategy.HYPERALIGN and profile is not None:
        facts, hypotheses = profile.facts, profile.supported_hypotheses
    elif strategy is Strategy.FEW_SHOT and examples:
        facts, hypotheses = style_facts([e.text for e in examples]), []
    else:
        raise InputError("best-of-N reranks by the person's profile or examples; zero-shot has neither")
    own = profile if strategy is Strategy.HYPERALIGN else None
    if not facts and not (options.check_hypotheses and hypotheses) and not (own and own.word_use):
        raise InputError("best-of-N needs measured style facts or word use in the profile (infer it again) or "
                         "check_hypotheses")
    # Checked before any candidate is written: it depends on the profile alone.
    by = ranked_by(options.rerank, own.word_use if own else None, facts)
    base_seed = options.seed or 0
    requests = [_request(messages, options, steering,
                         options.temperature if i == 0 else options.sample_temperature, base_seed + i)
                for i in range(options.best_of)]
    with track_usage() as usage:
        completions = await asyncio.gather(*(client.acomplete(r) for r in requests))
        texts = [finish(c.text.strip(), steering) for c in completions]
        checker = client if options.check_hypotheses else None
        scored = await asyncio.gather(*(aadherence(text, facts, hypotheses, client=checker) for text in texts))
    guard = _copy_guard(strategy, messages, options)
    copied = [guard(text) for text in texts]
    if by == "word-margin" and own is not None and own.word_use is not None:
        ranking = [word_rank(text, own.word_use) for text in texts]
    else:  # a candidate none of whose contrasted facts can be measured (no numbers, no paragraphs) sits at margin 0
        ranking = [(s.margin or 0.0) if by == "margin" else s.score for s in scored]

    def rank(i: int) -> tuple[bool, float]:  # under the copy limit first, then the best score
        rate = copied[i]
        return (rate is None or rate <= options.max_copied, ranking[i])

    best = max(range(len(completions)), key=rank)  # the first of equals: seed order
    chosen = completions[best]
    return Generation(
        task=task, strategy=strategy, text=texts[best], finish_reason=chosen.finish_reason, usage=usage,
        model=chosen.model or client.model, prompt_version=version_tag("generate"), adherence=scored[best].score,
        candidate_scores=ranking, reranked_by=by,
        steer=steering.level, levers=applied_levers(steering, [chosen]), copy_rate=copied[best],
    )
