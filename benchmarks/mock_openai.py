"""A mock OpenAI-compatible upstream for load benchmarks: answers every chat completion with the same short reply
after a fixed latency (MOCK_LATENCY_S, default 0.2), asynchronously, so thousands of requests can wait at once.

    MOCK_LATENCY_S=0.2 python -m uvicorn mock_openai:app --app-dir benchmarks --port 9000
"""

from __future__ import annotations

import asyncio
import os
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LATENCY = float(os.environ.get("MOCK_LATENCY_S", "0.2"))


async def completions(request: Request) -> JSONResponse:
    body = await request.json()
    await asyncio.sleep(LATENCY)
    return JSONResponse({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "mock"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Gears first, opinions later."},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
    })


app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
