"""Joining a Ray cluster within a bounded time, with Ray's own messages kept off the terminal.

`ray.init(address=...)` of a cluster that is not there retries for minutes, its C++ core printing warnings straight
to the process's stderr (file descriptor 2, below Python's logging). So, for a cluster address (`--ray-address`, or
RAY_ADDRESS, which ray.init also reads):

- an address with a host and a port is probed first (a TCP connection, at most `timeout` seconds): nothing
  listening there is said at once;
- ray.init then runs in a helper thread while descriptor 2 points at a log file; if it has not answered within
  `timeout` seconds the batch stops with one message naming the address and that file. The helper is a daemon
  thread and ends with the process; what Ray still prints goes to the file, the program's own messages to a copy
  of the real stderr.

A local Ray (no address) is started as before, in this thread: starting one is slow on a busy machine, not a
hang."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError

DEFAULT_CONNECT_TIMEOUT_S = 15.0
RAY_INIT_OPTIONS: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)


def _endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a cluster address that names both ("host:port", "ray://host:port"); None otherwise."""
    if address in ("auto", "local"):
        address = os.environ.get("RAY_ADDRESS", "") if address == "auto" else ""
    if not address:
        return None
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"the Ray cluster address {address!r}: not host:port (e.g. 10.0.0.5:6379)") from None
    if not parts.hostname or port is None:
        return None
    return parts.hostname, port


def _probe(address: str, endpoint: tuple[str, int], timeout: float) -> None:
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except OSError as exc:
        reason = (f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError)
                  else exc.strerror or str(exc) or type(exc).__name__)
        raise InputError(f"the Ray cluster at {address}: cannot be reached ({reason}); start it (`ray start "
                         "--head`) or give the host:port of its head node") from None


def connect_ray(address: str | None, num_cpus: int | None, timeout: float) -> None:
    """ray.init: a local Ray (address None, and no RAY_ADDRESS), or the cluster at `address` within `timeout`
    seconds (module docstring). Every failure is an InputError naming the address."""
    import ray

    target = address or os.environ.get("RAY_ADDRESS")
    if not target:
        try:
            ray.init(num_cpus=num_cpus, **RAY_INIT_OPTIONS)
        except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
            raise InputError(f"cannot start a local Ray: {' '.join(str(exc).split())[:300]}") from None
        return
    endpoint = _endpoint(target)
    if endpoint is not None:
        _probe(target, endpoint, timeout)
    outcome: dict[str, BaseException | None] = {}

    def join() -> None:
        try:
            ray.init(address=address, **RAY_INIT_OPTIONS)
            outcome["error"] = None
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    handle, log = tempfile.mkstemp(prefix="hyperalign-ray-", suffix=".log")
    saved = os.dup(2)
    sys.stderr.flush()
    os.dup2(handle, 2)
    helper = threading.Thread(target=join, name="hyperalign-ray-connect", daemon=True)
    try:
        helper.start()
        helper.join(timeout)
    finally:
        os.close(handle)
        if helper.is_alive():  # descriptor 2 stays on the log: the helper may still print
            sys.stderr = os.fdopen(saved, "w", encoding="utf-8", errors="backslashreplace", buffering=1)
        else:
            os.dup2(saved, 2)
            os.close(saved)
    if "error" not in outcome:
        raise InputError(f"the Ray cluster at {target}: no answer within {timeout:g} s (a cluster there would "
                         f"answer in seconds; the connect timeout sets this); Ray's messages are in {log}")
    error = outcome["error"]
    if error is not None:
        raise InputError(f"the Ray cluster at {target}: cannot join it ({' '.join(str(error).split())[:300]}); "
                         f"Ray's messages are in {log}") from None
    with contextlib.suppress(OSError):
        Path(log).unlink()
