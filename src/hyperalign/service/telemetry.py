"""The service's Prometheus metrics (served at /metrics by metrics.py), one registry per service so that two services
in one process never share counters. Labels are route templates, methods, statuses, job states and tenant ids:
never an end user's id, never any text."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("hyperalign_requests", "HTTP requests answered", ["route", "method", "status", "tenant"],
                                registry=self.registry)
        self.latency = Histogram("hyperalign_request_seconds", "Time to answer an HTTP request", ["route"],
                                 registry=self.registry, buckets=_SECONDS)
        self.upstream = Histogram("hyperalign_upstream_seconds",
                                  "Time the upstream model took for a chat request (a stream: to its last event)",
                                  ["tenant"], registry=self.registry, buckets=_SECONDS)
        self.tokens = Counter("hyperalign_tokens", "Tokens of chat requests, as the upstream reported them (or "
                              "estimated where it did not)", ["tenant", "kind"], registry=self.registry)

    def chat(self, tenant_id: str, seconds: float, prompt_tokens: int, completion_tokens: int) -> None:
        self.upstream.labels(tenant_id).observe(seconds)
        self.tokens.labels(tenant_id, "prompt").inc(prompt_tokens)
        self.tokens.labels(tenant_id, "completion").inc(completion_tokens)
