"""What the chat endpoint does to a whole (not streamed) personalized answer before sending it, in order: the copy
guard (copy_guard.py), then the strategy's own pass — `hyperalign:revise` (revision.py) or `hyperalign:best-of=4`
(best_of.py). Each may ask the upstream again; what they cost is returned to be counted, and their headers say
what they did. A stream gets none of them (chat.py refuses the two strategies that promise them)."""

from __future__ import annotations

from typing import Any

from .best_of import BEST_OF_STRATEGY, best_completion
from .copy_guard import guarded_completion
from .personalize import Applied
from .revision import REVISE, revise_completion, revision_header
from .state import ServiceState
from .usage import Usage
from .users import EndUser

WHOLE_ANSWER_STRATEGIES = (REVISE, BEST_OF_STRATEGY)
STREAM_NOT_GUARDED = {"X-Hyperalign-Copy-Guard": "off: stream"}


async def after_writing(state: ServiceState, user: EndUser, applied: Applied, body: dict[str, Any],
                        completion: bytes, messages: list[dict[str, Any]],
                        task: str) -> tuple[bytes, Usage, dict[str, str]]:
    """(the completion to send, the usage of the calls made after the first, the headers to add)."""
    completion, headers, usage = await guarded_completion(state, applied, body, completion, messages)
    if applied.strategy == REVISE:
        completion, revision, revising = await revise_completion(state, user.key, applied, body, completion, task)
        usage = usage + revising
        if revision is not None:
            headers["X-Hyperalign-Revision"] = revision_header(revision)
    elif applied.strategy == BEST_OF_STRATEGY:
        completion, chosen, sampled = await best_completion(state, user.key, applied, body, completion, messages)
        usage = usage + sampled
        if chosen is not None:
            headers["X-Hyperalign-Best-Of"] = chosen
    return completion, usage, headers
