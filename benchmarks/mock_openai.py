"""A mock OpenAI-compatible upstream for load benchmarks: answers every chat completion with the same short reply
after a fixed latency (MOCK_LATENCY_S, default 0.2), asynchronously, so thousands of requests can wait at once.

With MOCK_REPLIES=profiles it answers as a model that follows hyperalign's prompts would (the service tests'
responder, tests/service_support.py): profile inference quoting the users' texts — which must hold that
responder's QUOTE — and verification telling the person's text from the default voice's, so `batch infer` makes
the calls a real inference makes (default voice, proposal, verification) and keeps its hypotheses.

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
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LATENCY = float(os.environ.get("MOCK_LATENCY_S", "0.2"))
PROFILES = os.environ.get("MOCK_REPLIES") == "profiles"
REPLY = "Gears first, opinions later."


def _profile_reply(body: dict[str, Any]) -> tuple[str, int, int]:
    """(content, prompt tokens, completion tokens) as the service tests' responder answers; tokens ≈ chars / 4."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from hyperalign.llm import CompletionRequest
    from service_support import responder

    schema = (body.get("response_format") or {}).get("json_schema") or {}
    request = CompletionRequest(messages=body["messages"], max_tokens=body.get("max_tokens") or 512,
                                json_schema=schema.get("schema"), schema_name=schema.get("name") or "output")
    content = responder(request)
    prompt = sum(len(str(m.get("content") or "")) for m in body["messages"])
    return content, max(1, prompt // 4), max(1, len(content) // 4)


async def completions(request: Request) -> JSONResponse:
    body = await request.json()
    await asyncio.sleep(LATENCY)
    content, prompt_tokens, completion_tokens = _profile_reply(body) if PROFILES else (REPLY, 10, 6)
    return JSONResponse({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "mock"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
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


def start_mock(latency: float, root: Path, replies: str = "fixed") -> tuple[subprocess.Popen[bytes], int]:
    """This server in its own process (so it does not share the load generator's interpreter); its port.
    `replies`: "fixed" (one short reply) or "profiles" (module docstring)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "mock_openai:app", "--app-dir", "benchmarks", "--port",
                                str(port), "--log-level", "warning", "--backlog", "4096"], cwd=root,
                               env=os.environ | {"MOCK_LATENCY_S": str(latency), "MOCK_REPLIES": replies})
    return process, port
