"""The FastAPI application: routes, request-size limit, CORS (off unless origins are configured), error shape, and
the background job worker running beside the requests."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..api import HyperAlign
from ..config import load_settings
from ..errors import InputError
from ..profiles.store import ProfileStore
from ..redaction import redact_url, validate_base_url
from . import chat, errors, metrics, openapi, review, tracing, users_api, webhooks_api
from .auth import CallerDep
from .jobs import JobWorker
from .refresh import ProfileRefresher
from .state import ServiceConfig, ServiceState
from .tables import MIGRATIONS as SERVICE_MIGRATIONS
from .tables import open_service_store
from .upstream import BackendUpstream, OpenAIUpstream, Upstream
from .webhooks import Webhooks


class RequestSizeLimit:
    """413 for a body over the limit, whether it declares its length or streams it in chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = HTTPException(413, f"the request body is over {self.max_bytes:,} bytes")
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = errors.error_response(413, str(too_large.detail), "invalid_request_error")
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise too_large  # answered by the HTTPException handler
            return message

        await self.app(scope, counted, send)


class Utf8Path:
    """400 for a path whose percent-escapes do not decode to UTF-8 (`%FF`, `%C0%AF`, an encoded surrogate): the
    framework would decode them to U+FFFD, and two different user ids would name one user."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            try:
                unquote_to_bytes(raw.split(b"?", 1)[0]).decode("utf-8")
            except UnicodeDecodeError:
                response = errors.error_response(400, "the URL's path is not valid UTF-8 once its %-escapes are "
                                                 "decoded; percent-encode the UTF-8 bytes of the id",
                                                 "invalid_request_error", "invalid_path")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Health(BaseModel):
    status: Literal["ok"]


class Status(Health):
    version: str
    database: Literal["ok"]
    upstream: str  # as it may be shown: without credentials (redact_url)
    tenant: str
    strategy: str  # the tenant's default personalization
    jobs: bool  # whether this process also works on background jobs


def create_app(state: ServiceState, tracer_provider: Any = None) -> FastAPI:
    """The service's app (tracer_provider: trace into this one, whatever the configuration says)."""
    hooks = Webhooks(state)
    refresher = ProfileRefresher(state.ha, state.store, state.queue, population_texts=state.config.population_texts,
                                 population_min_users=state.config.population_min_users)
    worker = JobWorker(state.queue, refresher,
                       poll_seconds=state.config.job_poll_seconds, on_finished=hooks.job_finished)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.upstream.prepare()
        task = asyncio.create_task(worker.run_forever()) if state.config.run_jobs else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPIOffline(  # /docs and /redoc with their assets served from here (openapi.py)
        title="hyperalign", version=version("hyperalign"), lifespan=lifespan,
        dependencies=[Depends(openapi.known_query)],
        description="Personalized LLM outputs: an OpenAI-compatible chat endpoint that applies each end user's "
                    "profile, and the API to build, review and correct those profiles.",
    )
    app.state.service = state
    app.state.webhooks = hooks
    errors.install(app)
    openapi.install(app)
    app.include_router(chat.router)
    # Before the router whose paths start /v1/users/{user_id:path}, which would take ".../review-links" as a user id
    app.include_router(users_api.listing)
    app.include_router(review.router)
    app.include_router(users_api.router)
    app.include_router(webhooks_api.router)
    metrics.install(app, state)

    # Probes answer anyone, so they say nothing about the deployment (no host, no URL, no version); the
    # authenticated /v1/status says more, to a tenant's key.
    @app.get("/healthz", tags=["service"], summary="The service process answers (liveness)",
             response_model=Health, responses=errors.responses(400))
    def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", tags=["service"], summary="The service can serve requests: its database answers (readiness)",
             response_model=Health, responses=errors.responses(400, 503))
    def readyz() -> Health:
        state.store.current_version("-")  # one query: a database that is down answers 503 through the handler
        return Health(status="ok")

    @app.get("/v1/status", tags=["service"], summary="What serves this tenant: version, database, upstream",
             response_model=Status, responses=errors.responses(400, 401, 429, 503))
    def status(caller: CallerDep) -> Status:
        state.store.current_version("-")
        return Status(status="ok", version=version("hyperalign"), database="ok",
                      upstream=redact_url(state.upstream.description), tenant=caller.tenant.name,
                      strategy=caller.tenant.strategy, jobs=state.config.run_jobs)

    if tracer_provider is not None or tracing.wanted(state.config.tracing):
        tracing.instrument(app, tracer_provider)
    app.add_middleware(RequestSizeLimit, max_bytes=state.config.max_request_bytes)
    app.add_middleware(Utf8Path)
    if state.config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=state.config.cors_origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"], allow_headers=["*"],
                           # what was applied to an answer, readable by a browser client too
                           expose_headers=EXPOSED_HEADERS)
    return app


EXPOSED_HEADERS = ["X-Hyperalign-Strategy", "X-Hyperalign-Profile-Version", "X-Hyperalign-Hypotheses",
                   "X-Hyperalign-Examples", "X-Hyperalign-Prompt", "X-Hyperalign-Steer", "X-Hyperalign-Levers",
                   "X-Hyperalign-Revision", "X-Hyperalign-Best-Of", "X-Hyperalign-Copy-Rate",
                   "X-Hyperalign-Rewrites", "X-Hyperalign-Copy-Guard",
                   "Retry-After"]


def build_state(ha: HyperAlign, store: ProfileStore, config: ServiceConfig | None = None, *,
                upstream_base_url: str | None = None, upstream_api_key: str | None = None,
                upstream_model: str | None = None, upstream_timeout: float = 120.0,
                upstream_retries: int = 2) -> ServiceState:
    """Chat requests go to the OpenAI-compatible upstream when one is given, else to `ha`'s own backend. The
    service's tables are added to `store`'s database if it has none yet (`open_service_store` opens one so)."""
    store.keep_beside(SERVICE_MIGRATIONS)
    if upstream_base_url:
        try:
            validate_base_url(upstream_base_url)
        except ValueError as exc:
            raise InputError(f"the upstream base URL: {exc}") from None
    upstream: Upstream = (
        OpenAIUpstream(upstream_base_url, upstream_api_key, model=upstream_model, timeout=upstream_timeout,
                       max_retries=upstream_retries)
        if upstream_base_url else BackendUpstream(ha.client)
    )
    return ServiceState(config or ServiceConfig(), store, ha, upstream)


SPEC_VARIABLE = "HYPERALIGN_SERVE_SPEC"


class ServeSpec(BaseModel):
    """Everything a service process needs to build its app, so that each of uvicorn's worker processes builds the
    same one. No secret is in it: the LLM key travels as HYPERALIGN_API_KEY, the upstream's as
    HYPERALIGN_UPSTREAM_API_KEY, in the workers' environment."""

    settings: dict[str, Any]
    store: str | None
    config: ServiceConfig
    upstream_base_url: str | None = None
    upstream_model: str | None = None


def build_app(spec: ServeSpec) -> FastAPI:
    # No completion cache: a cached completion holds a user's texts, is not keyed by user, and so could not be
    # deleted with the user.
    settings = load_settings(**(spec.settings | {"no_cache": True, "cache": None}))
    ha = HyperAlign.from_settings(settings)
    state = build_state(ha, open_service_store(spec.store), spec.config, upstream_base_url=spec.upstream_base_url,
                        upstream_api_key=os.environ.get("HYPERALIGN_UPSTREAM_API_KEY"),
                        upstream_model=spec.upstream_model)
    return create_app(state)


def app_from_environment() -> FastAPI:
    """uvicorn's factory for `hyperalign serve --workers N`: the spec comes from the environment."""
    return build_app(ServeSpec.model_validate_json(os.environ[SPEC_VARIABLE]))
