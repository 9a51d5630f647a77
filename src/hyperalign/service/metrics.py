"""GET /metrics, in Prometheus's text format (prometheus_client): requests by route, status and tenant, their
latency, the upstream model's latency and tokens per tenant (telemetry.py), and jobs by state and tenant (read from
the database at scrape time, so every replica reports the same shared queue).

Routes are labelled by their template ("/v1/users/{user_id}/jobs"), never by the concrete path, which holds user
ids; tenants by their id (the tenant of the request's key; "-" before or without one). What a scraper sees: route
templates, status codes, tenant ids, counts, tokens and seconds; no end user, no text."""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .state import ServiceState
from .tables import jobs
from .telemetry import Telemetry
from .tenants import TENANT_ID_LENGTH


class JobStates(Collector):
    """Jobs by state, counted in the database when scraped."""

    def __init__(self, state: ServiceState):
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("hyperalign_jobs", "Jobs in the database by state and tenant",
                                   labels=["state", "tenant"])
        tenant = func.substr(jobs.c.user_key, 1, TENANT_ID_LENGTH)  # the user key is "<tenant id>:<user id>"
        with self.state.store.transaction() as connection:
            rows = connection.execute(select(jobs.c.status, tenant, func.count()).group_by(jobs.c.status, tenant)).all()
        for status, tenant_id, count in rows:
            family.add_metric([status, tenant_id], count)
        yield family


class _Measured:
    """Pure ASGI (no BaseHTTPMiddleware, which would stand between the size limit and the body it counts): the
    answer's status from the response start, the route template from the scope the router filled in."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry):
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            tenant = (scope.get("state") or {}).get("tenant_id") or "-"  # auth.py sets it once the key is known
            self.telemetry.requests.labels(route, scope.get("method", ""), str(status[0]), tenant).inc()
            self.telemetry.latency.labels(route).observe(time.perf_counter() - started)


def install(app: FastAPI, state: ServiceState) -> None:
    registry = state.telemetry.registry
    registry.register(JobStates(state))

    app.add_middleware(_Measured, telemetry=state.telemetry)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics: requests, latency, upstream, tokens, jobs",
             response_class=Response, include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
