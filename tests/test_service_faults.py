"""Faults: an upstream that fails, rate-limits or hangs is retried, then answered with a clean OpenAI-shaped error;
a server killed with SIGKILL in the middle of a job leaves nothing half-written and the job is taken up again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import psutil
import pytest

from hyperalign.service.tables import open_service_store
from hyperalign.service.tenants import create_key
from openai_test_server import OpenAITestServer, delayed, error
from serve_process import free_port, wait_until_healthy
from service_support import EXAMPLE_TEXT, start_service


@pytest.fixture
def upstream():
    with OpenAITestServer() as server:
        yield server


@pytest.mark.parametrize(("replies", "status", "kind"), [
    ([error(500, "boom"), error(502, "still broken")], 502, "upstream_error"),
    # Overloaded or too slow: the service is unavailable for now (503, retry), not the client rate-limited.
    ([error(429, "slow down", headers={"Retry-After": "0"})] * 2, 503, "upstream_unavailable"),
    ([delayed(1.5), delayed(1.5)], 503, "upstream_unavailable"),
])
def test_an_upstream_failure_is_retried_then_a_clean_openai_error(upstream, tmp_path, replies, status, kind):
    server, service = start_service(f"sqlite:///{tmp_path / 's.db'}", upstream_base_url=upstream.base_url,
                                    upstream_timeout=0.5)
    try:
        upstream.script(*replies)
        client = openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.keys["acme"], max_retries=0)
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}])
        assert raised.value.status_code == status and len(upstream.requests) == 2  # tried, retried, gave up
        body = raised.value.body
        assert isinstance(body, dict) and body["type"] == kind and "Traceback" not in str(body)
    finally:
        server.__exit__()
        service.store.close()


def _serve(store: str, port: int, *backend: str, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "hyperalign", *backend, "serve", "--store", store, "--port", str(port),
               "--job-lease-seconds", "1", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_healthy(f"http://127.0.0.1:{port}", process)
    return process


def test_a_server_killed_mid_job_leaves_no_half_written_profile_and_the_job_resumes(upstream, tmp_path: Path):
    store_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with open_service_store(store_url) as store:
        key, _ = create_key(store, "acme")
    upstream.script(*[delayed(2.0, error(500, "slow and broken"))] * 20)  # the job's LLM calls hang
    port = free_port()
    first = _serve(store_url, port, "--backend", "openai", "--base-url", upstream.base_url)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"})
    try:
        http.post("/v1/users/ann/examples", json={"examples": [{"text": EXAMPLE_TEXT}]}).raise_for_status()
        job = http.post("/v1/users/ann/jobs").json()
        deadline = time.monotonic() + 30
        while http.get(f"/v1/users/ann/jobs/{job['id']}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        while not upstream.requests:  # the job is inside its first LLM call
            time.sleep(0.05)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    with open_service_store(store_url) as store:
        assert store.list_profiles() == []  # nothing half-written is visible
    second = _serve(store_url, port, "--backend", "fake")
    try:
        deadline = time.monotonic() + 60
        while (state := http.get(f"/v1/users/ann/jobs/{job['id']}").json())["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state["status"] == "succeeded" and state["attempts"] == 2 and state["result_version"] == 1
        assert http.get("/v1/users/ann/profile").json()["version"]["version"] == 1
        # The service caches no completion: one would hold the user's texts beyond their deletion.
        assert not list(Path(os.environ["XDG_CACHE_HOME"]).rglob("*.sqlite3"))
    finally:
        second.terminate()
        second.wait(timeout=30)
        http.close()


def test_several_worker_processes_serve_the_same_service(tmp_path: Path):
    store_url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with open_service_store(store_url) as store:
        key, _ = create_key(store, "acme")
    port = free_port()
    server = _serve(store_url, port, "--backend", "fake", extra=("--workers", "2"))
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
        headers = {"Authorization": f"Bearer {key}"}
        httpx.post(f"http://127.0.0.1:{port}/v1/users/ann/examples", headers=headers,
                   json={"examples": [{"text": EXAMPLE_TEXT}]}).raise_for_status()
        job = httpx.post(f"http://127.0.0.1:{port}/v1/users/ann/jobs", headers=headers).json()
        deadline = time.monotonic() + 60
        while httpx.get(f"http://127.0.0.1:{port}/v1/users/ann/jobs/{job['id']}", headers=headers).json()["status"] \
                != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for _ in range(6):  # whichever worker answers, the same profile is applied
            raw = client.chat.completions.with_raw_response.create(
                model="m", user="ann", messages=[{"role": "user", "content": "Hi"}])
            assert raw.headers["x-hyperalign-profile-version"] == "1"
        children = psutil.Process(server.pid).children()
        assert len([c for c in children if "spawn_main" in " ".join(c.cmdline())]) == 2  # two worker processes
    finally:
        server.terminate()
        server.wait(timeout=30)
