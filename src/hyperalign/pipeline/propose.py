"""Step 1 of the method: the LLM proposes hypotheses about the person (one structured call per aspect) and simple
attributes (one call). Every string and array in these schemas is bounded: with grammar-constrained decoding a small
model otherwise repeats one sentence until the token limit. The quote menu offers the examples' own sentences as the
only allowed evidence (a JSON-schema enum), so a weak model can only cite real text."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, create_model

from ..llm import Completion, LLMClient
from ..profiles.model import UserExample
from ..prompts import render_messages
from . import evidence

QUOTE_MAX_CHARS = 160
Quote = Annotated[str, StringConstraints(min_length=3, max_length=QUOTE_MAX_CHARS)]
ShortText = Annotated[str, StringConstraints(max_length=60)]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class HypothesisDraft(BaseModel):
    statement: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=240)] = Field(
        description="one concrete, checkable statement")
    evidence: list[Quote] = Field(min_length=1, max_length=3, description="quotes copied word for word")


class HypothesisBatch(BaseModel):
    hypotheses: list[HypothesisDraft] = Field(min_length=1, max_length=5)


class AttributesDraft(BaseModel):
    likely_role: ShortText
    domain: ShortText
    audience: ShortText
    formality: Literal["formal", "neutral", "informal"]


def quote_menu(examples: list[UserExample], size: int) -> list[str]:
    """Up to `size` quotable sentences, taken round-robin across examples so every example is represented."""
    per_example = []
    for example in examples:
        sentences = []
        for sentence in _SENTENCE_END.split(example.text):
            sentence = " ".join(sentence.split())
            if len(sentence) > QUOTE_MAX_CHARS:
                sentence = sentence[:QUOTE_MAX_CHARS].rsplit(" ", 1)[0]
            if len(sentence) >= evidence.MIN_QUOTE_CHARS:
                sentences.append(sentence)
        per_example.append(sentences)
    menu: dict[str, None] = {}
    for rank in range(max((len(s) for s in per_example), default=0)):
        for sentences in per_example:
            if rank < len(sentences) and len(menu) < size:
                menu[sentences[rank]] = None
    return list(menu)


def batch_schema(menu: list[str]) -> type[HypothesisBatch]:
    if not menu:
        return HypothesisBatch
    choice: Any = Literal[tuple(menu)]  # a type built at run time: the sentences of this user's examples
    draft: Any = create_model(
        "HypothesisDraft", __base__=HypothesisDraft, evidence=(list[choice], Field(min_length=1, max_length=3))
    )
    return create_model(
        "HypothesisBatch", __base__=HypothesisBatch, hypotheses=(list[draft], Field(min_length=1, max_length=5))
    )



async def propose_hypotheses(
    client: LLMClient, shown: list[UserExample], aspect: str, guidance: str, *, schema: type[HypothesisBatch],
    max_hypotheses: int, max_tokens: int,
) -> tuple[HypothesisBatch, list[Completion]]:
    messages = render_messages(
        "infer_hypotheses", examples=shown, aspect_label=aspect.replace("_", " "), guidance=guidance,
        max_hypotheses=max_hypotheses,
    )
    return await client.acomplete_structured(messages, schema, step=f"infer_hypotheses[{aspect}]", max_tokens=max_tokens)


async def propose_attributes(client: LLMClient, shown: list[UserExample]) -> tuple[AttributesDraft, list[Completion]]:
    messages = render_messages("infer_attributes", examples=shown)
    return await client.acomplete_structured(messages, AttributesDraft, step="infer_attributes", max_tokens=200)
