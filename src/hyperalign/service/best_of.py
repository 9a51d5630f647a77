"""`hyperalign:best-of=4` on the chat endpoint: the library's best-of-N reranking (pipeline/generate.py) on whole
completions. The client's request is answered as asked, and `BEST_OF - 1` more answers are sampled alongside it
(upstream.sampled: the library's sampling temperature, seeds after the request's), all at once; each is finished as it would be sent
(the code levers) and scored by code on the user's profile — by the word-use margin over the default voice where the
profile measured it, else by the facts' margin where they were measured against it, else by adherence
(pipeline/adherence.rank_score). The best is sent, the first of
equals (so the client's own answer wins ties); the response's `usage` counts every call, and
`X-Hyperalign-Best-Of` says how many were written, by what they were ranked and which was chosen ("4;margin;2").

A sample that fails upstream is left out of the ranking; where the client's own answer fails, the request fails as
any other would. A stream cannot be reranked before it is sent: such a request is refused."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..pipeline.adherence import rank_score
from ..pipeline.steer import finish
from .personalize import Applied
from .state import ServiceState
from .upstream import UpstreamError, sampled
from .usage import NOTHING, Usage, count_calls, first_text, of_completion

BEST_OF_STRATEGY = "hyperalign:best-of=4"
BEST_OF = 4


async def best_completion(state: ServiceState, user_key: str, applied: Applied, body: dict[str, Any],
                          completion: bytes, messages: list[dict[str, Any]]) -> tuple[bytes, str | None, Usage]:
    """(the completion to send, the X-Hyperalign-Best-Of value — None where nothing was reranked, the samples'
    usage)."""
    parsed = json.loads(completion)
    if first_text(parsed) is None or applied.profile_version is None:
        return completion, None, NOTHING
    answers = await asyncio.gather(*(state.upstream.complete(sampled(body, i), applied.steering)
                                     for i in range(1, BEST_OF)), return_exceptions=True)
    written = [answer for answer in answers if isinstance(answer, bytes)]
    for failure in answers:
        if isinstance(failure, BaseException) and not isinstance(failure, UpstreamError):
            raise failure
    own = [of_completion(answer, messages) for answer in (completion, *written)]  # the client's answer first
    stored = await asyncio.to_thread(state.store.get, user_key, applied.profile_version)
    candidates = [parsed, *(json.loads(answer) for answer in written)]
    scored = [rank_score(finish(first_text(c) or "", applied.steering), stored.profile.facts,
                         stored.profile.word_use) for c in candidates]
    best = max(range(len(candidates)), key=lambda i: (first_text(candidates[i]) is not None,
                                                       scored[i][0] if scored[i][0] is not None else float("-inf")))
    samples_usage = count_calls(candidates[best], own, best)
    return json.dumps(candidates[best]).encode(), f"{len(candidates)};{scored[0][1]};{best + 1}", samples_usage
