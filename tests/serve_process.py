"""For tests that run `hyperalign serve` as a child process: a free loopback port to give it, and waiting until it
answers /healthz."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(url: str, process: subprocess.Popen[Any], *, seconds: float = 60,
                       log: Callable[[], str] = lambda: "") -> None:
    """Poll `url`/healthz until it answers 200. If the process exits first or `seconds` pass, kill it and raise
    RuntimeError with the end of `log()`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the service at {url} did not answer /healthz: {log()[-2000:]}")
        time.sleep(0.1)
