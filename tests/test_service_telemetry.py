"""/metrics per tenant (upstream latency, tokens, requests, jobs) and OpenTelemetry traces (with an in-memory span
exporter), over real HTTP with the openai client: tenant ids label them, no end user's id or text reaches either."""

from __future__ import annotations

import httpx
import openai
import pytest

from hyperalign.service import tracing
from service_support import start_service

SECRET_USER = "ann/with-a-secret-id"
HI = [{"role": "user", "content": "Write a note about Quillwort."}]


def tenant_of(service, tenant: str = "acme") -> str:
    from hyperalign.service.tenants import authenticate

    return authenticate(service.store, service.keys[tenant])[1].id


def test_metrics_give_upstream_latency_and_tokens_per_tenant(service):
    client = openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.keys["acme"], max_retries=0)
    answers = [client.chat.completions.create(model="m", messages=HI, user=SECRET_USER) for _ in range(2)]
    list(client.chat.completions.create(model="m", messages=HI, user=SECRET_USER, stream=True))
    openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.keys["other"], max_retries=0) \
        .chat.completions.create(model="m", messages=HI)
    text = httpx.get(f"{service.url}/metrics").text
    acme, other = tenant_of(service), tenant_of(service, "other")
    assert f'hyperalign_upstream_seconds_count{{tenant="{acme}"}} 3.0' in text
    assert f'hyperalign_upstream_seconds_count{{tenant="{other}"}} 1.0' in text
    completion = [line for line in text.splitlines()
                  if line.startswith(f'hyperalign_tokens_total{{kind="completion",tenant="{acme}"}}')]
    reported = sum(a.usage.completion_tokens for a in answers)
    assert len(completion) == 1 and float(completion[0].split()[-1]) > reported  # the stream's estimate added
    assert f'hyperalign_tokens_total{{kind="prompt",tenant="{acme}"}}' in text
    assert f'route="/v1/chat/completions",status="200",tenant="{acme}"' in text
    assert "secret" not in text and "Quillwort" not in text


@pytest.fixture
def traced(tmp_path):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server, service = start_service(f"sqlite:///{tmp_path / 's.sqlite3'}", tracer_provider=provider)
    yield service, exporter
    server.__exit__()
    service.store.close()


def test_every_request_is_a_span_named_by_its_route_without_the_user(traced):
    service, exporter = traced
    with service.http() as http:
        http.post("/v1/users/ann%2Fwith-a-secret-id/examples", json={"examples": [{"text": "Quillwort again."}]})
        http.get("/v1/users", params={"after": "ann-secret-cursor"})
    openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.keys["acme"], max_retries=0) \
        .chat.completions.create(model="m", messages=HI, user=SECRET_USER)
    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    assert {"POST /v1/users/{user_id:path}/examples", "GET /v1/users", "POST /v1/chat/completions"} <= names
    recorded = " ".join(f"{span.name} {dict(span.attributes or {})}" for span in spans)
    assert "secret" not in recorded and "Quillwort" not in recorded
    statuses = {span.name: dict(span.attributes or {}).get("http.status_code",
                                                             dict(span.attributes or {}).get("http.response.status_code"))
                for span in spans}
    assert statuses["POST /v1/chat/completions"] == 200


def test_tracing_is_off_unless_asked_for(service, monkeypatch):
    from hyperalign.service.app import create_app

    app = create_app(service_state(service))
    assert not any("OpenTelemetry" in m.cls.__name__ for m in app.user_middleware)
    assert tracing.wanted(False) is False
    monkeypatch.setenv(tracing.ENVIRONMENT_VARIABLE, "1")
    assert tracing.wanted(False) is True


def service_state(service):
    from hyperalign import HyperAlign
    from hyperalign.llm import LLMClient
    from hyperalign.service.app import build_state

    return build_state(HyperAlign(LLMClient(service.backend)), service.store)
