"""OpenTelemetry traces, off by default: `tracing` in the service's configuration (`hyperalign serve --tracing`, or
HYPERALIGN_TRACING=1) with the `[otel]` extra installed. Every request becomes a server span (the FastAPI
instrumentation); spans go to the tracer provider the process already has (e.g. set up by `opentelemetry-instrument`)
or else to an OTLP/HTTP exporter configured by the standard OTEL_EXPORTER_OTLP_* variables.

A span carries no end user's id: its name is the route template, and the URL's path and query — which hold user ids
and cursors — are replaced by that template before anything is recorded."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from fastapi import FastAPI
from starlette.routing import Match

from ..errors import InputError

ENVIRONMENT_VARIABLE = "HYPERALIGN_TRACING"
OTEL_INSTALL_HINT = "pip install 'hyperalign[otel]'"
# The attributes, old and new semantic conventions, that would carry the concrete path or query.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.query", "url.full")


def wanted(configured: bool) -> bool:
    return configured or os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def require_otel() -> None:
    missing = [name for name in ("opentelemetry.sdk.trace", "opentelemetry.instrumentation.fastapi",
                                 "opentelemetry.exporter.otlp.proto.http") if _missing(name)]
    if missing:
        raise InputError(f"tracing needs the otel extra ({', '.join(missing)} missing): {OTEL_INSTALL_HINT}")


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


def _default_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # the process set one up already: use it
        return current
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def instrument(app: FastAPI, tracer_provider: Any = None) -> None:
    """Trace every request of `app` (tracer_provider: the one to use, e.g. a test's in-memory one)."""
    require_otel()
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    def template(scope: dict[str, Any]) -> str:
        for route in app.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "unmatched"))
        return "unmatched"

    def scrub(span: Any, scope: dict[str, Any]) -> None:
        if span is None or not span.is_recording():
            return
        path = template(scope)
        for name in _URL_ATTRIBUTES:
            span.set_attribute(name, path if name != "url.query" else "")

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider or _default_provider(),
                                       server_request_hook=scrub, exclude_spans=["receive", "send"])
