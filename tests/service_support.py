"""The service under test: a real uvicorn server on a free loopback port in a background thread, over a real store
(SQLite or PostgreSQL), with the fake backend behind it — for the background jobs, and as the chat upstream unless
an OpenAI-compatible test server is given."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from hyperalign import HyperAlign
from hyperalign.llm import CompletionRequest, LLMClient
from hyperalign.llm.fake import FakeBackend
from hyperalign.profiles.store import ProfileStore
from hyperalign.service.app import build_state, create_app
from hyperalign.service.state import ServiceConfig
from hyperalign.service.tables import open_service_store
from hyperalign.service.tenants import create_key

QUOTE = "Gears first, opinions later."
EXAMPLE_TEXT = f"Fog again. The lamp turned 412 times last night. {QUOTE}"
STYLE = "Ends notes with a fixed motto."
ATTRIBUTES = {"likely_role": "lighthouse keeper", "domain": "maritime", "audience": "relief keepers",
              "formality": "informal"}


def responder(request: CompletionRequest) -> str:
    """Profile inference that quotes the examples (so hypotheses are supported), updates that rate everything as
    supported, and chat replies that say how many system messages they were given."""
    name = request.schema_name
    if name == "verify_hypotheses":  # the person's text is the one the default voice (the reply below) did not write
        prompt = request.messages[-1]["content"]
        first = prompt.split('<user_text id="A">', 1)[1].split("</user_text>", 1)[0]
        pick = "B" if "system message(s)" in first else "A"
        return json.dumps({key: pick for key in request.json_schema["properties"]})
    if name.startswith("infer_differences"):
        aspects = [k for k in request.json_schema["properties"] if k not in ("attributes", "measured")]
        drafts = {a: [{"statement": f"{STYLE} ({a})", "evidence": [QUOTE], "instead": "no motto"}] for a in aspects}
        if "measured" in request.json_schema["properties"]:  # explains none of the measured facts
            drafts["measured"] = []
        return json.dumps({**drafts, "attributes": ATTRIBUTES} if "attributes" in request.json_schema["properties"]
                          else drafts)
    if name == "infer_profile":
        aspects = [k for k in request.json_schema["properties"] if k != "attributes"]
        drafts = {a: [{"statement": f"{STYLE} ({a})", "evidence": [QUOTE]}] for a in aspects}
        return json.dumps({**drafts, "attributes": ATTRIBUTES})
    if name == "infer_attributes":
        return json.dumps(ATTRIBUTES)
    if name.startswith("infer_hypotheses"):
        return json.dumps({"hypotheses": [{"statement": "Counts things.", "evidence": [QUOTE]}]})
    if name == "fix_evidence":
        return json.dumps({key: [] for key in request.json_schema["properties"]})
    if name.startswith("score_hypotheses"):
        return json.dumps({key: "supports" for key in request.json_schema["properties"]})
    if request.json_schema is not None:
        raise AssertionError(f"unexpected structured request {name}")
    systems = sum(m["role"] == "system" for m in request.messages)
    return f"Fog again. Reply with {systems} system message(s). {QUOTE}"


class RunningServer:
    """uvicorn in a thread; `url` once started. Stopped on exit, its background worker with it."""

    def __init__(self, app: Any):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="hyperalign-service", daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Service:
    url: str
    store: ProfileStore
    backend: FakeBackend
    keys: dict[str, str] = field(default_factory=dict)  # tenant -> key

    def http(self, tenant: str = "acme", **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.keys[tenant]}"} if tenant else {}
        return httpx.Client(base_url=self.url, headers=auth | headers, timeout=30)

    def wait_for_job(self, user: str, job_id: str, tenant: str = "acme", timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.http(tenant) as client:
            while True:
                job = client.get(f"/v1/users/{user}/jobs/{job_id}").json()
                if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                    return job
                time.sleep(0.05)

    def start_job(self, user: str = "ann", text: str = EXAMPLE_TEXT) -> dict[str, Any]:
        """Add `text` to the user's examples and start a job on them; the job as created."""
        with self.http() as http:
            http.post(f"/v1/users/{user}/examples", json={"examples": [{"text": text}]}).raise_for_status()
            return http.post(f"/v1/users/{user}/jobs").json()

    def infer(self, user: str = "ann", text: str = EXAMPLE_TEXT) -> dict[str, Any]:
        """Add `text` to the user's examples and run a job on them; the job, which must have succeeded."""
        job = self.start_job(user, text)
        done = self.wait_for_job(user, job["id"])
        assert done["status"] == "succeeded", done
        return done


def start_service(store_url: str, *, config: ServiceConfig | None = None, upstream_base_url: str | None = None,
                  backend: FakeBackend | None = None, upstream_timeout: float = 5.0,
                  tracer_provider: Any = None) -> tuple[RunningServer, Service]:
    store = open_service_store(store_url)
    fake = backend or FakeBackend(responder)
    ha = HyperAlign(LLMClient(fake, concurrency=4))
    state = build_state(ha, store, config or ServiceConfig(job_poll_seconds=0.05), upstream_base_url=upstream_base_url,
                        upstream_retries=1, upstream_timeout=upstream_timeout)
    server = RunningServer(create_app(state, tracer_provider)).__enter__()
    service = Service(server.url, store, fake)
    for tenant in ("acme", "other"):
        service.keys[tenant], _ = create_key(store, tenant)
    return server, service


def all_rows(store: ProfileStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the store's database, by table."""
    from sqlalchemy import MetaData

    metadata = MetaData()
    metadata.reflect(store.engine)
    with store.transaction() as connection:
        return {name: [tuple(r) for r in connection.execute(table.select())] for name, table in metadata.tables.items()}
