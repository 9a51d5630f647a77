"""The contrast a profile is told apart from: the backbone's default voice, and optionally a reference population.

The default voice is what the model writes for the person's own tasks without knowing anything of the person — the
zero-shot output, through the same generation path (`generate.agenerate`) every baseline uses. It is model output,
nobody's private text, and exactly what the generator must move away from: a hypothesis that also describes it
describes the genre or the model, not the person. A text without a task gets one built from its opening and length
(or the operator's `genre_task`), so the two texts of a pair answer the same request.

A reference population (an operator's corpus of the genre, `--reference`) enters only as aggregate statistics —
each metric's distribution and word counts (`reference.ReferenceStats`) — never as text: no other person's words reach a
prompt, a profile, a log or a response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from ..llm import LLMClient, track_usage
from ..profiles.model import Contrast, ContrastText, UserExample
from .facts import Text
from .generate import GenerationOptions, Strategy, agenerate

OPENING_WORDS = 25


def opening(text: str) -> str:
    """The text's first sentence (at most OPENING_WORDS words): what a genre task starts from."""
    parsed = Text.of(text)
    words = parsed.raw.split()
    first = parsed.sentences[0] if parsed.sentences else words
    return " ".join(words[: min(len(first), OPENING_WORDS) or OPENING_WORDS])


def task_for(example: UserExample, genre_task: str | None = None) -> str:
    """The task the default voice answers for this example: its own, the operator's genre task, or one built from
    the text's opening and length."""
    if example.prompt and example.prompt.strip():
        return example.prompt
    if genre_task:
        return genre_task
    words = len(example.text.split())
    about = max(50, round(words / 50) * 50)
    return f"Write a text of about {about} words that starts with the following: {opening(example.text)}"


def contrast_max_tokens(example: UserExample, cap: int) -> int:
    """Room for an answer as long as the person's (≈ 1.4 tokens a word), never more than `cap`."""
    return max(64, min(cap, int(len(example.text.split()) * 1.4) + 40))


async def default_voice(
    client: LLMClient, examples: Sequence[UserExample], *, genre_task: str | None = None, max_tokens: int = 700,
    seed: int = 0, earlier: Contrast | None = None,
) -> Contrast:
    """The backbone's zero-shot answers to the person's tasks, one per example, with their cost. `earlier` (a stored
    profile's contrast) lends its answer to every task it answered with the same model; only the others are
    generated, so re-inferring a profile does not pay for its default voice again."""
    started = time.perf_counter()
    tasks = [task_for(e, genre_task) for e in examples]
    known = {c.prompt: c.text for c in earlier.texts} if earlier and earlier.model == client.model else {}
    todo = [i for i, task in enumerate(tasks) if task not in known]
    with track_usage() as usage:
        generations = await asyncio.gather(*(
            agenerate(client, tasks[i], Strategy.ZERO_SHOT,
                      options=GenerationOptions(max_tokens=contrast_max_tokens(examples[i], max_tokens), seed=seed))
            for i in todo))
    answers = known | {tasks[i]: g.text for i, g in zip(todo, generations, strict=True)}
    texts = [ContrastText(prompt=task, text=answers[task], example_index=i)
             for i, task in enumerate(tasks) if answers[task].strip()]
    return Contrast(model=client.model, texts=texts, usage=usage, seconds=round(time.perf_counter() - started, 2))
