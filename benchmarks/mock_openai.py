"""A mock OpenAI-compatible upstream for load benchmarks: answers every chat completion with the same short reply
after a fixed latency (MOCK_LATENCY_S, default 0.2), asynchronously, so thousands of requests can wait at once.

    MOCK_LATENCY_S=0.2 python -m uvicorn mock_openai:app --app-dir benchmarks --port 9000

Also what the load benchmarks share: their common options and starting this server in its own process."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_options(description: str, name: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default=name)
    return parser.parse_args()


def start_mock(latency: float, root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """This server in its own process (so it does not share the load generator's interpreter); its port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "mock_openai:app", "--app-dir", "benchmarks", "--port",
                                str(port), "--log-level", "warning", "--backlog", "4096"], cwd=root,
                               env=os.environ | {"MOCK_LATENCY_S": str(latency)})
    return process, port
