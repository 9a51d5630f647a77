"""GET /metrics, in Prometheus's text format (prometheus_client): requests by route and status, their latency, and
jobs by state (read from the database at scrape time, so every replica reports the same shared queue).

Each app has its own registry, so two services in one process (tests, `--workers`) never share counters. Routes are
labelled by their template ("/v1/users/{user_id}/jobs"), never by the concrete path, which holds user ids: no end
user's id reaches a metric. What a scraper sees: route templates, status codes, counts and seconds; no tenant, user
or text."""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .state import ServiceState
from .tables import jobs


class JobStates(Collector):
    """Jobs by state, counted in the database when scraped."""

    def __init__(self, state: ServiceState):
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("hyperalign_jobs", "Jobs in the database by state", labels=["state"])
        with self.state.store.transaction() as connection:
            rows = connection.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
        for status, count in rows:
            family.add_metric([status], count)
        yield family


class _Measured:
    """Pure ASGI (no BaseHTTPMiddleware, which would stand between the size limit and the body it counts): the
    answer's status from the response start, the route template from the scope the router filled in."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram):
        self.app, self.requests, self.latency = app, requests, latency

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
            self.requests.labels(route, scope.get("method", ""), str(status[0])).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)


def install(app: FastAPI, state: ServiceState) -> None:
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter("hyperalign_requests", "HTTP requests answered", ["route", "method", "status"],
                       registry=registry)
    latency = Histogram("hyperalign_request_seconds", "Time to answer an HTTP request", ["route"],
                        registry=registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
    registry.register(JobStates(state))

    app.add_middleware(_Measured, requests=requests, latency=latency)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics: requests, latency, jobs by state",
             response_class=Response, include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
