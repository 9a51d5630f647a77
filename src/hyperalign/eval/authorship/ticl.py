"""TICL, the tuning-free peer (Cho et al. 2025, "Tuning-Free Personalized Alignment via Trial-Error-Explain In-Context
Learning", arXiv 2502.08972), as an evaluation method on the same split, prompts and backbone as the others.

Building a person's prompt, per epoch, for each of the person's demonstrations not yet marked consistent, in a seeded
shuffled order:
1. trial — the model writes that demonstration's task from a prompt holding all the *other* demonstrations with the
   drafts and critiques collected so far (leave-one-out, as in the authors' code);
2. error + explain — one structured "editor" call compares the trial with the person's real text on the eight style
   dimensions (not content) and answers {explanation, consistent};
3. an inconsistent trial is kept under its demonstration with its explanation; a consistent one marks the
   demonstration done.
At test time one call: every demonstration with its drafts and critiques, then the task.
The evaluation gives each demonstration the task it answers by the held-out items' rule (`demonstration_tasks`): on
a corpus without prompts (CCAT50) the news preset on the text's own first sentence, as the paper's tasks come with
their texts. A generic "write a text" made the 1.5B model ask what to write, and the critiques then taught nothing.

Where this departs from the paper, and why: 1 epoch by default (the authors' code runs 4; on 2 CPU cores with a 1.5B
model each trial-and-explain over 7 long texts costs minutes — `epochs` is an option); trials and test outputs use
the evaluation's generation settings (greedy, 600 tokens) instead of temperature 1.0 with 5 samples, so TICL is
compared like every other method; the backbone is the evaluation's, not GPT-4o; when the prompt outgrows the context,
drafts are cut first (to the most recent per demonstration), then every text is truncated evenly, as the authors
drop negatives before examples. The state is saved after every step, so building resumes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, model_validator

from ...errors import StructuredOutputError
from ...llm import CompletionRequest, LLMClient, Usage, track_usage
from ...pipeline.context import PROMPT_OVERHEAD_TOKENS, fit_examples
from ...profiles.model import UserExample
from ...prompts import render_messages, version_tag
from ...text import CHARS_PER_TOKEN


class Negative(BaseModel):
    draft: str
    explanation: str


class TiclItem(BaseModel):
    example: UserExample
    negatives: list[Negative] = []
    done: bool = False


class TiclState(BaseModel):
    """A person's TICL prompt under construction (or finished): what the run folder keeps."""

    items: list[TiclItem]
    epochs_done: int = 0
    steps_done: int = 0
    usage: Usage = Field(default_factory=Usage)
    seconds: float = 0.0  # wall time of building, over every session that worked on it

    @model_validator(mode="before")
    @classmethod
    def _usage_apart(cls, data: Any) -> Any:
        """A state saved before `usage` kept its calls and tokens as three fields of its own."""
        if isinstance(data, dict) and "usage" not in data and "llm_calls" in data:
            data = dict(data)
            data["usage"] = {name: data.pop(name) for name in ("llm_calls", "prompt_tokens", "completion_tokens")
                             if name in data}
        return data
    version: str = Field(default_factory=lambda: version_tag("ticl_generate", "ticl_explain"))


class EditorVerdict(BaseModel):
    explanation: str = Field(max_length=800)
    consistent: bool


class TiclOptions(BaseModel):
    epochs: int = Field(1, ge=1, le=10)
    seed: int = 0
    max_tokens: int = 600
    explanation_tokens: int = 300
    draft_chars: int = 3000  # a trial shown as a negative is cut to this many characters


def _fitted(items: list[TiclItem], task: str, context_tokens: int | None, max_tokens: int) -> list[TiclItem]:
    """The items as they fit the context: all drafts if they fit; else the latest draft per demonstration; else the
    latest, cut short; the demonstrations' texts then share what room is left (truncated evenly, as everywhere)."""
    if context_tokens is None:
        return items
    reserve = max_tokens + int(len(task) / CHARS_PER_TOKEN)
    examples = [i.example for i in items]
    for keep in ("all", "latest", "short"):
        negatives = [_negatives(i.negatives, keep) for i in items]
        draft_tokens = int(sum(len(n.draft) + len(n.explanation) + 60 for ns in negatives for n in ns) / CHARS_PER_TOKEN)
        room = context_tokens - draft_tokens
        if room - reserve <= PROMPT_OVERHEAD_TOKENS + 50 * len(items):
            continue  # the drafts alone leave no room for the texts: keep fewer of them
        fitted, truncated = fit_examples(examples, room, reserve)
        if keep == "short" or not truncated:
            return [TiclItem(example=e, negatives=ns, done=i.done) for i, e, ns in zip(items, fitted, negatives,
                                                                                         strict=True)]
    fitted, _ = fit_examples(examples, context_tokens, reserve)  # no room for drafts at all: the texts alone
    return [TiclItem(example=e, done=i.done) for i, e in zip(items, fitted, strict=True)]


def _negatives(negatives: list[Negative], keep: str) -> list[Negative]:
    if keep == "all":
        return negatives
    latest = negatives[-1:]
    if keep == "latest":
        return latest
    return [n.model_copy(update={"draft": n.draft[:1000], "explanation": n.explanation[:400]}) for n in latest]


def _messages(items: list[TiclItem], task: str, client: LLMClient, max_tokens: int) -> list[dict[str, str]]:
    return render_messages("ticl_generate", items=_fitted(items, task, client.backend.context_tokens, max_tokens),
                           task=task)


async def abuild(client: LLMClient, demonstrations: list[UserExample], options: TiclOptions,
                 state: TiclState | None = None, save: Callable[[TiclState], None] = lambda state: None) -> TiclState:
    """Run the trial-error-explain epochs (resuming `state` if given); `save` is called after every step."""
    state = state or TiclState(items=[TiclItem(example=d) for d in demonstrations])
    for epoch in range(state.epochs_done, options.epochs):
        order = list(range(len(state.items)))
        random.Random(f"{options.seed}:{epoch}").shuffle(order)
        for step, index in enumerate(order):
            if step < state.steps_done or state.items[index].done:
                continue
            item = state.items[index]
            started = time.perf_counter()
            task = item.example.prompt or "Write a text in your usual style."
            others = [other for j, other in enumerate(state.items) if j != index]
            with track_usage() as usage:
                trial = await client.acomplete(CompletionRequest(
                    messages=_messages(others, task, client, options.max_tokens), max_tokens=options.max_tokens,
                    temperature=0.0, seed=options.seed))
                try:
                    verdict = await client.acomplete_structured(
                        render_messages("ticl_explain", task=task, gold=item.example.text,
                                        candidate=trial.text.strip()),
                        EditorVerdict, step="ticl_explain", max_tokens=options.explanation_tokens)
                except StructuredOutputError:  # an editor that cannot answer: the trial counts as inconsistent
                    verdict = EditorVerdict(explanation="(no explanation: the editor's answer was invalid)",
                                            consistent=False)
            state.usage.add(usage)
            if verdict.consistent:
                item.done = True
            else:
                item.negatives.append(Negative(draft=trial.text.strip()[: options.draft_chars],
                                               explanation=verdict.explanation.strip()))
            state.steps_done = step + 1
            state.seconds = round(state.seconds + time.perf_counter() - started, 2)
            save(state)
        state.epochs_done, state.steps_done = epoch + 1, 0
        save(state)
    return state


def final_messages(state: TiclState, task: str, client: LLMClient, max_tokens: int) -> list[dict[str, str]]:
    """The test-time prompt: every demonstration with its drafts and critiques, then the task."""
    return _messages(state.items, task, client, max_tokens)
