"""`Idempotency-Key` on the POST routes that store something (as Stripe and the IETF's Idempotency-Key draft have it):
a client that retries a request after a timeout or a dropped connection sends the same key, and gets the first
answer back instead of its work done twice.

- The key is scoped to the tenant: two tenants' keys never meet. It is remembered for `idempotency_hours`.
- The same key with another request (method, path or body differs) is refused, 409 `idempotency_key_reused`.
- The work and the answer's record are one transaction: either both are kept or neither. Two requests with the same
  key at once: on PostgreSQL the second one's record collides with the first one's (primary key), its transaction —
  its work included — rolls back, and it answers with the first one's answer; on SQLite writers take turns, so the
  second one finds the first one's record.
- A replayed answer says so (`Idempotent-Replayed: true`). A record names the user it is about, and goes with them
  when they are deleted (users.delete_user)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..profiles.database import as_utc
from .auth import CallerDep, StateDep
from .errors import IdempotencyKeyReused
from .state import ServiceState
from .tables import idempotency_keys

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII without spaces, as a header value can carry it
REPLAYED = "Idempotent-Replayed"


@dataclass(frozen=True)
class Idempotency:
    state: ServiceState
    tenant_id: str
    key: str | None  # None: the request carried no key, and is simply done
    fingerprint: str

    async def run(self, status: int, user_key: str | None, work: Callable[[Connection], BaseModel]) -> Response:
        """The answer to the request: `work`'s result (done in the transaction that records it), or the answer
        recorded for this key."""
        return await asyncio.to_thread(self._run, status, user_key, work)

    def _run(self, status: int, user_key: str | None, work: Callable[[Connection], BaseModel]) -> Response:
        try:
            return self._once(status, user_key, work)
        except IntegrityError:
            if self.key is None:
                raise
            # Another request with this key committed first (PostgreSQL): this one's work rolled back; answer as
            # that one did.
            return self._once(status, user_key, work)

    def _once(self, status: int, user_key: str | None, work: Callable[[Connection], BaseModel]) -> Response:
        now = datetime.now(UTC)
        with self.state.store.transaction(write=True) as connection:
            if self.key is not None:
                recorded = self._recorded(connection, now)
                if recorded is not None:
                    return recorded
            body = work(connection).model_dump_json()
            if self.key is not None:
                connection.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at < now))
                connection.execute(insert(idempotency_keys).values(
                    tenant_id=self.tenant_id, key=self.key, fingerprint=self.fingerprint, user_key=user_key,
                    status=status, body=body, created_at=now,
                    expires_at=now + timedelta(hours=self.state.config.idempotency_hours)))
        return Response(body, status_code=status, media_type="application/json")

    def _recorded(self, connection: Connection, now: datetime) -> Response | None:
        row = connection.execute(select(idempotency_keys).where(
            idempotency_keys.c.tenant_id == self.tenant_id, idempotency_keys.c.key == self.key)).mappings().first()
        if row is None or as_utc(row["expires_at"]) < now:
            return None  # an expired record is replaced by this request's
        if row["fingerprint"] != self.fingerprint:
            raise IdempotencyKeyReused(f"this {HEADER} was used with another request; use a new key for a new "
                                       "request", HEADER)
        return Response(row["body"], status_code=row["status"], media_type="application/json",
                        headers={REPLAYED: "true"})


async def idempotency(
    request: Request, caller: CallerDep, state: StateDep,
    key: Annotated[str | None, Header(
        alias=HEADER, max_length=255, pattern=KEY_PATTERN,
        description="A unique key per request (e.g. a UUID): a retry with the same key and body gets the first "
                    "answer back instead of storing twice; the same key with another body is refused (409). "
                    "Kept per tenant for `idempotency_hours` (24 h by default).")] = None,
) -> Idempotency:
    digest = hashlib.sha256(f"{request.method}\n{request.url.path}\n".encode())
    digest.update(await request.body())
    return Idempotency(state, caller.tenant.id, key, digest.hexdigest())


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
