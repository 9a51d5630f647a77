"""`hyperalign:revise` on the chat endpoint: the library's revision pass (pipeline/revise.py) on a whole completion.
The first choice's text is measured on the user's profile facts; where it deviates, one more upstream call (greedy,
the same model, the same token biases, no prefill) asks for a revision, which replaces the text only where code
measures it closer to the person. The response's `usage` counts both calls, and `X-Hyperalign-Revision` says what
happened: `kept`, `not-kept` (the draft stands), `none` (nothing to revise, no call) or `failed` (the revision
call failed upstream: the answer is sent unrevised, not lost).

A stream is sent as it is written, before it could be measured: a streaming request under this strategy is refused
with a message that says so, rather than streamed unrevised under a strategy that promises a revision."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..pipeline.revise import Revision, revision_prompt, settle
from ..pipeline.steer import Steering, finish
from .personalize import Applied
from .state import ServiceState
from .upstream import UpstreamError
from .usage import NOTHING, Usage, add_usage, first_text, of_completion

REVISE = "hyperalign:revise"
# What of the client's request the revision call keeps: the model, the length limit and the end user's hashed id.
_KEPT = ("model", "max_tokens", "max_completion_tokens", "safety_identifier")


def revision_header(record: Revision) -> str:
    return "failed" if record.failed else "kept" if record.kept else "not-kept" if record.deviations else "none"


async def revise_completion(state: ServiceState, user_key: str, applied: Applied, body: dict[str, Any],
                            completion: bytes, task: str) -> tuple[bytes, Revision | None, Usage]:
    """(the completion to send, what the revision did — None where the completion has no text to revise, the
    revision call's usage)."""
    parsed = json.loads(completion)
    draft = first_text(parsed)
    if not draft or applied.profile_version is None:
        return completion, None, NOTHING
    stored = await asyncio.to_thread(state.store.get, user_key, applied.profile_version)
    facts = stored.profile.facts
    # Measured as it would be sent: with the opening and sign-off code puts on it (steering.py), as the library does.
    messages, record = revision_prompt(task, finish(draft, applied.steering), facts)
    if messages is None:
        return completion, record, NOTHING
    request = {key: body[key] for key in _KEPT if key in body} | {"messages": messages, "temperature": 0}
    try:
        answer = await state.upstream.complete(request, Steering(level=applied.steering.level,
                                                                 biases=applied.steering.biases))
    except UpstreamError as exc:  # the answer is written and paid for: it is sent as it is, and the header says so
        record.failed, record.reason = True, f"the revision call failed: {exc.message}"
        return completion, record, NOTHING
    usage = of_completion(answer, messages)
    text, record = settle(record, first_text(json.loads(answer)) or "", facts)
    if record.kept:
        parsed["choices"][0]["message"]["content"] = text
    add_usage(parsed, usage)  # the response counts what it cost: both calls
    return json.dumps(parsed).encode(), record, usage
