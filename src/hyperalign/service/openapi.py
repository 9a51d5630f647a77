"""The OpenAPI document as the service really behaves, and its pages offline.

- Validation errors are answered 400 in OpenAI's shape (errors.py), never FastAPI's 422: the 422 FastAPI adds to
  every operation with parameters is taken out of the document, with its HTTPValidationError schema.
- A query parameter a route does not know is refused (400, naming it) rather than silently ignored: `?limt=5` is a
  typo the client wants to hear about, and the document says which parameters exist.
- /docs and /redoc load Swagger UI and ReDoc from this server (the files the fastapi-offline package carries), not
  from a CDN: they work on a machine without internet access."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi

from .errors import RequestError

_UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def known_query(request: Request) -> None:
    """A dependency of every route: 400 for a query parameter the route does not take."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    allowed = _query_names(dependant)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise RequestError(f"unknown query parameter {unknown[0]!r} (this route takes: {accepted})", unknown[0])


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes, tags=app.openapi_tags)
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = document.get("components", {}).get("schemas", {})
            for name in _UNUSED_SCHEMAS:
                schemas.pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
