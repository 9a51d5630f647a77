"""Review links: what lets a person open their review page without an API key.

A link is `<public URL>/review/<token>`, the token 256 random bits: it says nothing about whose page it opens (the
user id is not in it, not even encrypted). The database keeps only the token's SHA-256 with its tenant, user and
expiry (`review_link_days`), so a copy of the database opens no page. A tenant revokes every outstanding link of a
user at once (`DELETE /v1/users/{id}/review-links`); deleting the user deletes their links too.

The link's address is the configured public URL (`public_url`, e.g. https://profiles.example.com), never the
request's Host header, which the caller (or a proxy) chooses; without one, the address the server itself listens
on, as the connection it came in on names it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from starlette.requests import Request

from ..profiles.database import as_utc
from .errors import NotFound
from .state import ServiceState
from .tables import review_links
from .tenants import tenant_by_id
from .users import EndUser, end_user


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue(state: ServiceState, user: EndUser) -> tuple[str, datetime]:
    """A new token for the user's review page, and when it expires."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + timedelta(days=state.config.review_link_days)
    with state.store.transaction(write=True) as connection:
        connection.execute(delete(review_links).where(review_links.c.expires_at < now))  # keep the table small
        connection.execute(insert(review_links).values(token_hash=_hash(token), tenant_id=user.tenant.id,
                                                       user_key=user.key, created_at=now, expires_at=expires))
    return token, expires


def read(state: ServiceState, token: str) -> EndUser:
    """The user a valid, unexpired, unrevoked token opens; NotFound for anything else (no hint of which)."""
    with state.store.transaction() as connection:
        row = connection.execute(select(review_links).where(review_links.c.token_hash == _hash(token))).first()
    tenant = tenant_by_id(state.store, row.tenant_id) if row and as_utc(row.expires_at) > datetime.now(UTC) else None
    if row is None or tenant is None:
        raise NotFound("this review link is not valid (or has expired, or was revoked); ask for a new one")
    return end_user(tenant, row.user_key.removeprefix(f"{tenant.id}:"))


def revoke(state: ServiceState, user: EndUser) -> int:
    """Every outstanding link of the user stops working now; how many there were."""
    with state.store.transaction(write=True) as connection:
        return int(connection.execute(delete(review_links).where(review_links.c.user_key == user.key)).rowcount or 0)


def page_url(state: ServiceState, request: Request, token: str) -> str:
    base = state.config.public_url
    if base is None:  # the address this server listens on, as the connection names it (not the Host header)
        host, port = request.scope.get("server") or ("127.0.0.1", 80)
        default = {"http": 80, "https": 443}.get(request.url.scheme)
        host = f"[{host}]" if ":" in str(host) else host
        base = f"{request.url.scheme}://{host}" + ("" if port == default else f":{port}")
    return f"{base.rstrip('/')}/review/{token}"
