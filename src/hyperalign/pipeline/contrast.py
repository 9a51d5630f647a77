"""The contrast a profile is told apart from: the backbone's default voice, and optionally a reference population.

The default voice is what the model writes for the person's own tasks without knowing anything of the person — the
zero-shot output, through the same generation path (`generate.agenerate`) every baseline uses. It is model output,
nobody's private text, and exactly what the generator must move away from: a hypothesis that also describes it
describes the genre or the model, not the person. A text without a task gets one built from its opening and length
(or the operator's `genre_task`), so the two texts of a pair answer the same request.

A reference population (an operator's corpus of the genre, `--reference`) enters only as aggregate statistics —
each metric's distribution and word counts (`ReferenceStats`) — never as text: no other person's words reach a
prompt, a profile, a log or a response."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import sqrt

from ..llm import LLMClient, track_usage
from ..profiles.model import Contrast, ContrastText, UserExample
from .facts import METRICS, Text, content_words, measure
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
    seed: int = 0,
) -> Contrast:
    """The backbone's zero-shot answers to the person's tasks, one per example, with their cost."""
    started = time.perf_counter()
    tasks = [task_for(e, genre_task) for e in examples]
    with track_usage() as usage:
        generations = await asyncio.gather(*(
            agenerate(client, task, Strategy.ZERO_SHOT,
                      options=GenerationOptions(max_tokens=contrast_max_tokens(e, max_tokens), seed=seed))
            for task, e in zip(tasks, examples, strict=True)))
    texts = [ContrastText(prompt=task, text=g.text, example_index=i)
             for i, (task, g) in enumerate(zip(tasks, generations, strict=True)) if g.text.strip()]
    return Contrast(model=client.model, texts=texts, usage=usage, seconds=round(time.perf_counter() - started, 2))


@dataclass
class ReferenceStats:
    """A population's aggregates — per metric the count, sum and sum of squares of its texts' values, and word
    counts — never a text. Sums, so that one person's own texts can be taken out again (`without`): in a batch, each
    user is compared with everyone else."""

    name: str
    texts: int
    sums: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    words: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, name: str, texts: Sequence[str]) -> ReferenceStats:
        stats = cls(name=name, texts=0)
        stats._add(texts, 1)
        return stats

    def without(self, texts: Sequence[str]) -> ReferenceStats:
        """The population less these texts (theirs are in it): aggregates of everyone else."""
        other = ReferenceStats(self.name, self.texts, dict(self.sums), Counter(self.words))
        other._add(texts, -1)
        return other

    def _add(self, texts: Sequence[str], sign: int) -> None:
        parsed = [Text.of(t) for t in texts if t.strip()]
        self.texts += sign * len(parsed)
        for metric in METRICS:
            n, total, squares = self.sums.get(metric, (0, 0.0, 0.0))
            for t in parsed:
                value = measure(metric, t)
                if value is not None:
                    n, total, squares = n + sign, total + sign * value, squares + sign * value * value
            self.sums[metric] = (n, total, squares)
        for t in parsed:
            counts = Counter(content_words(t.raw))
            if sign > 0:
                self.words.update(counts)
            else:
                self.words.subtract(counts)
        self.words = +self.words  # drop zero and negative counts

    @property
    def metrics(self) -> dict[str, tuple[float, float]]:
        """metric -> (mean, population standard deviation), where at least two texts give a value."""
        result = {}
        for metric, (n, total, squares) in self.sums.items():
            if n >= 2:
                average = total / n
                result[metric] = (average, sqrt(max(0.0, squares / n - average * average)))
        return result
