"""Every error the service answers with has OpenAI's shape — {"error": {"message", "type", "param", "code"}} — so
an OpenAI client raises its usual exceptions; no body ever carries a traceback (those go to the server's log)."""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import ConflictError, HyperAlignError, InputError, StoreError
from .upstream import UpstreamError

log = logging.getLogger("hyperalign.service")


class NotFound(HyperAlignError):
    """404: also what another tenant's user looks like, so that a key cannot learn who exists elsewhere."""


class Unauthorized(HyperAlignError):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"rate limit exceeded for this API key; retry in {retry_after} s")
        self.retry_after = retry_after


def error_response(status: int, message: str, kind: str, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}},
                        status_code=status, headers=headers)


def as_response(exc: Exception) -> JSONResponse:
    """The answer to an exception raised while serving a request."""
    if isinstance(exc, Unauthorized):
        return error_response(401, str(exc), "invalid_request_error", "invalid_api_key",
                              {"WWW-Authenticate": "Bearer"})
    if isinstance(exc, NotFound):
        return error_response(404, str(exc), "invalid_request_error", "not_found")
    if isinstance(exc, StoreError):  # the database, not the request: say so without its address
        log.error("store error: %s", exc)
        return error_response(503, "the service's database is unavailable; try again later", "server_error")
    if isinstance(exc, ConflictError):
        return error_response(409, str(exc), "invalid_request_error", "conflict")
    if isinstance(exc, InputError):
        return error_response(400, str(exc), "invalid_request_error")
    if isinstance(exc, UpstreamError):
        return error_response(exc.status, exc.message, exc.kind)
    if isinstance(exc, RateLimited):
        return error_response(429, str(exc), "rate_limit_exceeded", "rate_limit_exceeded",
                              {"Retry-After": str(exc.retry_after)})
    incident = secrets.token_hex(4)
    log.error("internal error %s", incident, exc_info=exc)
    return error_response(500, f"internal error {incident}; the server's log has the details", "server_error")


def install(app: FastAPI) -> None:
    async def any_error(_: Request, exc: Exception) -> JSONResponse:
        return as_response(exc)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
        return error_response(400, f"{where}: {first.get('msg', 'invalid')}", "invalid_request_error")

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail), "invalid_request_error",
                              headers=getattr(exc, "headers", None))

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    # Expected failures are answered where they happen; anything else reaches the outermost handler, which answers
    # 500 with an incident id and leaves the traceback to the log.
    app.add_exception_handler(HyperAlignError, any_error)
    app.add_exception_handler(UpstreamError, any_error)
    app.add_exception_handler(RateLimited, any_error)
    app.add_exception_handler(Exception, any_error)
