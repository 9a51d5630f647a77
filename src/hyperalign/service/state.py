"""The service's configuration and the objects one running service holds (store, LLM client, upstream, jobs)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from pydantic import BaseModel, Field, field_validator

from ..api import HyperAlign
from ..errors import InputError
from ..pipeline.steer import SteerLevel
from ..profiles.store import ProfileStore, StoredProfile
from ..redaction import validate_base_url
from .jobs import JobQueue
from .personalize import Applied, system_message, with_generic_marks
from .telemetry import Telemetry
from .tenants import service_secret
from .upstream import Upstream

# What a browser sends as its Origin: scheme://host[:port], nothing else — no path, no spaces, no CR/LF (a header).
_ORIGIN = re.compile(r"[a-z][a-z0-9+.\-]*://(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


class ServiceConfig(BaseModel):
    # Per API key, in the `limits` notation ("600/minute", "10/second;600/minute"). Counted in this process: two
    # replicas each allow this much (a shared counter needs a `limits` storage such as Redis).
    rate_limit: str = "600/minute"
    max_request_bytes: int = Field(2_000_000, ge=1_000)
    cors_origins: list[str] = []  # none: browsers on other origins may not call the service
    run_jobs: bool = True  # this process also works on background jobs
    job_poll_seconds: float = Field(1.0, gt=0)
    job_lease_seconds: float = Field(60.0, gt=0)
    job_max_attempts: int = Field(3, ge=1)
    profile_cache_size: int = Field(10_000, ge=1)  # rendered personalizations kept in memory
    idempotency_hours: float = Field(24.0, gt=0, le=24 * 365)  # how long an Idempotency-Key's answer is replayed
    # Where people reach this service (review links are built on it): scheme://host[:port][/prefix]. None: the
    # address the server listens on — never the request's Host header.
    public_url: str | None = None
    review_link_days: float = Field(7.0, gt=0, le=366)  # how long a review link opens its page
    # Webhooks: attempts per event and endpoint, the backoff between them (doubling from webhook_backoff_seconds up
    # to webhook_backoff_max_seconds), each attempt's timeout, and whether private addresses may be endpoints.
    webhook_attempts: int = Field(6, ge=1, le=50)
    webhook_backoff_seconds: float = Field(2.0, ge=0, le=3600)
    webhook_backoff_max_seconds: float = Field(600.0, ge=0, le=86_400)
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=300)
    webhook_allow_private_hosts: bool = False
    # Per end user on the chat endpoint (budgets.py): requests in the `limits` notation, tokens per UTC day.
    user_rate_limit: str | None = None
    user_tokens_per_day: int | None = Field(None, ge=1)
    # The tenant's other users as each inference's reference population (population.py): their latest this many
    # texts, as aggregates; none under population_min_users other users, or with 0 texts (the default: measured,
    # it leaves a third of the facts and identifies people less well, benchmarks/results/population-facts.md).
    population_texts: int = Field(0, ge=0, le=10_000)
    population_min_users: int = Field(5, ge=2, le=10_000)
    tracing: bool = False  # OpenTelemetry traces (the [otel] extra; also HYPERALIGN_TRACING=1): tracing.py

    @field_validator("rate_limit", "user_rate_limit")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        expected = "expected e.g. '600/minute' or '10/second;600/minute'"
        try:
            items = parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit; {expected}") from None
        if not items:
            raise ValueError(f"{value!r} is not a rate limit; {expected}")
        if any(item.amount < 1 for item in items):
            raise ValueError(f"{value!r} allows 0 requests, so every request would be refused; allow at least 1 per "
                             "period")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else check_public_url(value, "the public URL")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for origin in values:
            if origin == "*":
                continue
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin; expected scheme://host[:port] without a path, "
                                 "e.g. https://app.example.com, or *")
            try:
                urlsplit(origin).port  # noqa: B018 (a port that is not a number in 0..65535 raises)
            except ValueError:
                raise ValueError(f"{origin!r} has an invalid port; expected e.g. https://app.example.com:8443") from None
        return values


def check_public_url(url: str, what: str) -> str:
    """An http(s) URL others reach: a host, no user name or password in it, no query or fragment; the reason
    otherwise (a ValueError naming `what`)."""
    try:
        validate_base_url(url)
    except (ValueError, InputError) as exc:
        raise ValueError(f"{what}: {exc}") from None
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not carry a user name or password")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError(f"{what} must not have a query (?…) or fragment (#…)")
    return url


@dataclass
class ServiceState:
    config: ServiceConfig
    store: ProfileStore
    ha: HyperAlign  # for background jobs (inference, updates)
    upstream: Upstream  # for chat requests
    queue: JobQueue = field(init=False)
    user_hash_key: bytes = field(init=False)
    review_key: bytes = field(init=False)
    limiter: SlidingWindowCounterRateLimiter = field(init=False)
    limits: list[RateLimitItem] = field(init=False)
    user_limits: list[RateLimitItem] = field(init=False)
    personalization: Any = field(init=False)
    telemetry: Telemetry = field(init=False)

    def __post_init__(self) -> None:
        self.telemetry = Telemetry()
        self.queue = JobQueue(self.store, lease_seconds=self.config.job_lease_seconds,
                              max_attempts=self.config.job_max_attempts)
        self.user_hash_key = service_secret(self.store, "user-hash")
        self.review_key = service_secret(self.store, "review-link")
        # A sliding window approximated from two fixed windows: constant work per request, whatever the limit (a
        # moving window keeps every hit of the window and slowed each request as the limit grew).
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.limits = parse_many(self.config.rate_limit)
        self.user_limits = parse_many(self.config.user_rate_limit) if self.config.user_rate_limit else []
        # The personalization of a profile version, rendered once: keyed by the user, the version and when it was
        # saved (so a deleted-and-recreated profile never meets a stale entry), and the strategy.
        self.personalization = functools.lru_cache(maxsize=self.config.profile_cache_size)(self._personalization)

    def marked_profile(self, user_key: str, version: int) -> StoredProfile:
        """A stored profile version with its generic statements (shared across the tenant) marked, to go last."""
        stored = self.store.get(user_key, version)
        return replace(stored, profile=with_generic_marks(self.store, user_key, stored.profile))

    def _personalization(self, user_key: str, version: int, saved_at: datetime, strategy: str,
                         steer: SteerLevel) -> tuple[str | None, Applied]:
        return system_message(strategy, self.marked_profile(user_key, version), [], None, steer=steer,
                              capabilities=self.upstream.capabilities)
