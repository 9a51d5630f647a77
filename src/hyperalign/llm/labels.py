"""Reading a verdict's probability from the first output token's log-probabilities (where the backend declares
`logprobs`): what the label-probability judges and the pipeline's discriminative check share."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .base import Completion, CompletionRequest, Message
from .client import LLMClient

# Below this share of the first token's probability on the labels, the judge was about to write something else
# ("The", "Both"): the ratio between the labels is then too thin to read.
MIN_LABEL_MASS = 0.1
# Log-odds are clipped here (p in [0.0001, 0.9999]) so one saturated verdict cannot dominate the run's bias.
MAX_LOGIT = math.log(9999)
_WRAPPING = " \t\n\"'*()[]:.`"


def label_of(token: str, labels: Sequence[str]) -> str | None:
    """The label a token spells, ignoring the quotes, brackets and markdown a model may wrap it in. Single letters
    match exactly ("a" is an article, not a verdict); word labels ("yes") ignore case."""
    bare = token.strip(_WRAPPING)
    for label in labels:
        if bare == label or (len(label) > 1 and bare.casefold() == label.casefold()):
            return label
    return None


def label_probabilities(completion: Completion, labels: Sequence[str]) -> tuple[dict[str, float], float] | None:
    """(each label's probability, normalized over the labels; the share of the first token's probability that fell
    on any label), or None where the completion carries no log-probabilities or too little falls on the labels."""
    if not completion.logprobs:
        return None
    mass = dict.fromkeys(labels, 0.0)
    for token, logprob in completion.logprobs[0].top.items():
        label = label_of(token, labels)
        if label is not None:
            mass[label] += math.exp(logprob)
    total = sum(mass.values())
    if total < MIN_LABEL_MASS:
        return None
    return {label: value / total for label, value in mass.items()}, min(1.0, total)


def logit(probability: float) -> float:
    if probability <= 0.0:
        return -MAX_LOGIT
    if probability >= 1.0:
        return MAX_LOGIT
    return max(-MAX_LOGIT, min(MAX_LOGIT, math.log(probability / (1.0 - probability))))


async def read_labels(client: LLMClient, messages: list[Message], labels: Sequence[str]
                      ) -> tuple[dict[str, float], float] | None:
    """One output token with its top log-probabilities, read as the labels' distribution (see label_probabilities)."""
    completion = await client.acomplete(CompletionRequest(messages=messages, max_tokens=1, top_logprobs=20))
    return label_probabilities(completion, labels)
