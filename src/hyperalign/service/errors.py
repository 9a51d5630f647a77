"""Every error the service answers with has OpenAI's shape — {"error": {"message", "type", "param", "code"}} — so
an OpenAI client raises its usual exceptions; no body ever carries a traceback (those go to the server's log).

Messages speak the API's language: the library's errors are written for the command line, so before one reaches a
client it loses what only the service knows or only a shell can use — the tenant-scoped key a user is stored under
(`t89d6eda2e170:ann` is `ann` to the client), CLI advice (`hyperalign profile show …`, `--flag`) — and every
credential (`redact_text`)."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import ConflictError, HyperAlignError, InputError, StoreError
from ..redaction import redact_text
from .schemas import ErrorBody
from .upstream import UpstreamError

log = logging.getLogger("hyperalign.service")

_TENANT_PREFIX = re.compile(r"\bt[0-9a-f]{12}:")  # tenants.py: "t" + 12 hex digits, then the user id
_CLI_ADVICE = (
    re.compile(r"\s*\([^()]*(?:`hyperalign\b|(?<![\w-])--[a-z])[^()]*\)"),  # "(`hyperalign profile list`)"
    re.compile(r"\s*[;,—:]\s*(?:use|run|see|try|pass|give|set|add|or)\b[^;]*(?:`hyperalign\b|(?<![\w-])--[a-z])[^;]*"),
    re.compile(r"\s*`hyperalign\b[^`]*`"),
)


# What pydantic adds to an error's location inside a union ("stop.str", "stop.list[str]"): not a field of the request.
_UNION_TAG = re.compile(r"^(?:str|int|float|bool|list|dict|none|constrained-[a-z]+|[a-z-]+\[.*\]|\[key\])$")


class NotFound(HyperAlignError):
    """404: also what another tenant's user looks like, so that a key cannot learn who exists elsewhere."""


class Unauthorized(HyperAlignError):
    pass


class Forbidden(HyperAlignError):
    """403: a well-formed request the service's policy refuses (e.g. a webhook to a private address)."""


class RequestError(InputError):
    """A bad request, naming the field, header or parameter at fault (the error's `param`)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class IdempotencyKeyReused(RequestError):
    """409: an Idempotency-Key seen before with another request. (The IETF draft suggests 422; 409 says what it is
    — the request is valid, but conflicts with what this key already did — and is what clients retry-classify as
    "do not repeat as is".)"""


class RateLimited(Exception):
    def __init__(self, retry_after: int, reason: str = "rate limit exceeded for this API key",
                 code: str = "rate_limit_exceeded"):
        super().__init__(f"{reason}; retry in {retry_after} s")
        self.retry_after, self.code = retry_after, code


# What each error status means on this API, as the OpenAPI document says it.
_MEANINGS = {
    400: "Bad request: a field, header or parameter is invalid (named in `param`)",
    401: "Missing, malformed, wrong or revoked API key",
    403: "Refused by the service's policy (e.g. a webhook to a private address)",
    404: "No such user, version or job for this tenant (another tenant's user looks the same)",
    409: "Conflict: the profile changed meanwhile, or the Idempotency-Key was used before with another request",
    413: "The request body is over the service's limit",
    429: "Rate limit or token budget exceeded (per API key or per end user); see Retry-After",
    502: "The upstream model failed or refused the service's own credentials",
    503: "The database or the upstream model is unavailable; retry later (Retry-After when known)",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route for the error statuses it answers with, each in OpenAI's error shape."""
    return {status: {"model": ErrorBody, "description": _MEANINGS[status],
                     **({"headers": _RETRY_AFTER} if status in (429, 503) else {})} for status in statuses}


def public_message(message: str, tenant_id: str | None = None) -> str:
    """A library message as an API client may read it: no internal key, no CLI advice, no credential."""
    text = _TENANT_PREFIX.sub("", message)
    if tenant_id:
        text = text.replace(f"{tenant_id}:", "").replace(tenant_id, "the tenant")
    for pattern in _CLI_ADVICE:
        text = pattern.sub("", text)
    return redact_text(" ".join(text.split())) or "the request was refused"


def error_response(status: int, message: str, kind: str, code: str | None = None,
                   headers: dict[str, str] | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


def as_response(exc: Exception, tenant_id: str | None = None) -> JSONResponse:
    """The answer to an exception raised while serving a request (`tenant_id`: the caller's, when known)."""
    if isinstance(exc, Unauthorized):
        return error_response(401, str(exc), "invalid_request_error", "invalid_api_key",
                              {"WWW-Authenticate": "Bearer"})
    if isinstance(exc, Forbidden):
        return error_response(403, public_message(str(exc), tenant_id), "invalid_request_error", "forbidden")
    if isinstance(exc, NotFound):
        return error_response(404, public_message(str(exc), tenant_id), "invalid_request_error", "not_found")
    if isinstance(exc, StoreError):  # the database, not the request: say so without its address
        log.error("store error: %s", redact_text(str(exc)))
        return error_response(503, "the service's database is unavailable; try again later", "server_error",
                              "database_unavailable")
    if isinstance(exc, ConflictError):
        return error_response(409, public_message(str(exc), tenant_id), "invalid_request_error", "conflict")
    if isinstance(exc, IdempotencyKeyReused):
        return error_response(409, str(exc), "invalid_request_error", "idempotency_key_reused", param=exc.param)
    if isinstance(exc, InputError):
        return error_response(400, public_message(str(exc), tenant_id), "invalid_request_error",
                              param=getattr(exc, "param", None))
    if isinstance(exc, UpstreamError):
        return error_response(exc.status, public_message(exc.message, tenant_id), exc.kind, exc.code, exc.headers,
                              exc.param)
    if isinstance(exc, RateLimited):
        return error_response(429, str(exc), "rate_limit_exceeded", exc.code,
                              {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, HyperAlignError):  # the rest of the tree: whose fault it is decides the class of answer
        if exc.caller_fault:
            return error_response(400, public_message(str(exc), tenant_id), "invalid_request_error")
        log.error("%s: %s", type(exc).__name__, redact_text(str(exc)))
        return error_response(503, "the service's model is unavailable; try again later", "server_error",
                              "model_unavailable")
    incident = secrets.token_hex(4)
    log.error("internal error %s", incident, exc_info=exc)
    return error_response(500, f"internal error {incident}; the server's log has the details", "server_error")


def _param(location: Sequence[Any]) -> str | None:
    """Where a validation error is, as a client names it: `max_tokens`, `messages[0].role`, the query parameter
    `version`, the header `x-hyperalign-author`."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    parts = [p for p in parts if not (isinstance(p, str) and _UNION_TAG.match(p))]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


def validation_message(errors: Sequence[Any]) -> tuple[str, str | None]:
    """The first validation error as (message, param)."""
    first = dict(errors[0]) if errors else {}
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    param = _param(first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "missing" and param is None:
        return "the request needs a JSON body", None
    return f"{param or 'the request'}: {message}", param


def install(app: FastAPI) -> None:
    async def any_error(request: Request, exc: Exception) -> JSONResponse:
        return as_response(exc, getattr(request.state, "tenant_id", None))

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = validation_message(exc.errors())
        return error_response(400, message, "invalid_request_error", "invalid_value" if param else None, param=param)

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
