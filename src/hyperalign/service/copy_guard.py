"""The copy guard on the chat endpoint, as the library's (pipeline/generate.py), for whole answers: the system message
shows the user's own words — quoted evidence, and under `hyperalign:examples=K` whole texts — and a small model
hands them back verbatim. An answer whose share of word 8-grams repeating the system message is above
`GenerationOptions.max_copied` is asked again, sampled (upstream.sampled), up to
`copy_retries` times; the least-copying answer is sent (the first of equals). `X-Hyperalign-Copy-Rate` gives the sent
answer's share and `X-Hyperalign-Rewrites` how many were asked again; the response's `usage` counts every call.

A stream is sent as it is written and cannot be asked again: it is not guarded, and its `X-Hyperalign-Copy-Guard`
says so (`off: stream`). A rewrite that fails upstream is left out; the answer already written is not lost."""

from __future__ import annotations

import json
from typing import Any

from ..pipeline.generate import GenerationOptions
from ..text import copy_stats
from .personalize import Applied
from .state import ServiceState
from .upstream import UpstreamError, message_text, sampled
from .usage import NOTHING, Usage, count_calls, first_text, of_completion

_OPTIONS = GenerationOptions()


def copy_rate(answer: dict[str, Any], system: str) -> float:
    return round(copy_stats(first_text(answer) or "", [system])["copy_rate"], 4)


async def guarded_completion(state: ServiceState, applied: Applied, body: dict[str, Any], completion: bytes,
                             messages: list[dict[str, Any]]) -> tuple[bytes, dict[str, str], Usage]:
    """(the completion to send, the headers that say what the guard did, the rewrites' usage)."""
    system = next((message_text(m.get("content")) for m in messages if m.get("role") == "system"), "")
    best = json.loads(completion)
    if first_text(best) is None or not system:
        return completion, {}, NOTHING
    rate, chosen = copy_rate(best, system), 0
    spent = [of_completion(completion, messages)]  # every call's usage, the client's answer first
    while rate > _OPTIONS.max_copied and len(spent) <= _OPTIONS.copy_retries:
        try:
            raw = await state.upstream.complete(sampled(body, len(spent)), applied.steering)
        except UpstreamError:
            spent.append(NOTHING)
            continue
        spent.append(of_completion(raw, messages))
        answer = json.loads(raw)
        answer_rate = copy_rate(answer, system) if first_text(answer) is not None else rate
        if answer_rate < rate:
            best, rate, chosen = answer, answer_rate, len(spent) - 1
    rewrites = len(spent) - 1
    headers = {"X-Hyperalign-Copy-Rate": f"{rate:.4f}", "X-Hyperalign-Rewrites": str(rewrites)}
    if not rewrites:
        return completion, headers, NOTHING
    asked_again = count_calls(best, spent, chosen)  # counts the other calls into the sent answer's usage
    return json.dumps(best).encode(), headers, asked_again
