"""Webhooks: when a job of a tenant's user finishes, every endpoint the tenant registered gets a signed event.

- Signed as Standard Webhooks (Svix's scheme) have it, with the `standardwebhooks` package: headers `webhook-id`
  (the event's id, the same on every retry), `webhook-timestamp` (Unix seconds of this attempt) and
  `webhook-signature` (`v1,` + base64 HMAC-SHA256 over `id.timestamp.body`, keyed with the tenant's secret). A
  receiver verifies with any Standard Webhooks library, or those few lines, and refuses old timestamps (replays).
- Delivered with retries and exponential backoff (tenacity): a 2xx answer is delivered; anything else, or no answer,
  is tried again, up to `webhook_attempts` times. Redirects are not followed.
- Every attempt is written to the delivery log (GET /v1/webhooks/deliveries), with the receiver's status or the
  reason none came. A delivery names its user, and goes with them when they are deleted.
- Deliveries run in the process that ran the job, beside its requests; an event whose process stops before its
  last attempt is not tried again (the log shows how far it got).
- Endpoints on loopback, private or link-local addresses are refused (403) unless `webhook_allow_private_hosts`:
  a tenant must not make the service call into its own network. (A public name that resolves to a private
  address is not caught here; a deployment that needs that runs the service behind an egress proxy.)"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import secrets
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from standardwebhooks.webhooks import Webhook
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..profiles.database import as_utc
from .errors import Forbidden, NotFound
from .refresh import finished_job
from .schemas import Delivery, JobEvent, WebhookCreated, WebhookOut
from .state import ServiceState
from .tables import jobs, webhook_deliveries, webhook_secrets, webhooks
from .tenants import Tenant

log = logging.getLogger("hyperalign.service.webhooks")


class _Undelivered(Exception):
    """This attempt did not deliver: try again (tenacity)."""


def _private(host: str) -> bool:
    """Whether the host names this machine or a private network: localhost, or an address that is not global —
    written in any form a resolver takes for IPv4 ("127.1", "2130706433", "0x7f.0.0.1", "0")."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.ip_address(socket.inet_ntoa(socket.inet_aton(host)))
        except OSError:  # a name, not an address
            return False
    return not address.is_global


class Webhooks:
    def __init__(self, state: ServiceState):
        self.state = state
        self._sending: set[asyncio.Task[None]] = set()  # kept so that a running delivery is not garbage-collected

    # --- endpoints and the secret ----------------------------------------------------------------------------------

    def create(self, connection: Connection, tenant: Tenant, url: str, description: str | None) -> WebhookCreated:
        """A new endpoint, in the caller's transaction, with the tenant's secret (made if it has none yet)."""
        host = urlsplit(url).hostname or ""
        if _private(host) and not self.state.config.webhook_allow_private_hosts:
            raise Forbidden(f"webhooks are not delivered to {host!r}: a loopback, private or link-local address")
        endpoint = WebhookOut(id="wh_" + secrets.token_hex(8), url=url, description=description,
                              created_at=datetime.now(UTC))
        connection.execute(insert(webhooks).values(tenant_id=tenant.id, **endpoint.model_dump()))
        secret = connection.execute(select(webhook_secrets.c.secret).where(
            webhook_secrets.c.tenant_id == tenant.id)).scalar()
        if secret is None:  # two first endpoints at once: one insert collides, and its request is answered again
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
            connection.execute(insert(webhook_secrets).values(tenant_id=tenant.id, secret=secret))
        return WebhookCreated(**endpoint.model_dump(), secret=secret)

    def endpoints(self, tenant_id: str) -> list[WebhookOut]:
        query = select(webhooks).where(webhooks.c.tenant_id == tenant_id).order_by(webhooks.c.created_at)
        with self.state.store.transaction() as connection:
            rows = connection.execute(query).mappings().all()
        return [WebhookOut.model_validate(dict(row) | {"created_at": as_utc(row["created_at"])}) for row in rows]

    def delete(self, tenant_id: str, webhook_id: str) -> None:
        with self.state.store.transaction(write=True) as connection:
            gone = connection.execute(delete(webhooks).where(webhooks.c.tenant_id == tenant_id,
                                                             webhooks.c.id == webhook_id)).rowcount
        if not gone:
            raise NotFound(f"no webhook {webhook_id!r}")

    def secret(self, tenant_id: str) -> str:
        """The tenant's signing secret (made with its first endpoint)."""
        query = select(webhook_secrets.c.secret).where(webhook_secrets.c.tenant_id == tenant_id)
        with self.state.store.transaction() as connection:
            return str(connection.execute(query).scalar_one())

    def deliveries(self, tenant_id: str, *, after: int | None, limit: int) -> tuple[list[Delivery], bool]:
        """The tenant's delivery attempts, oldest first, after the cursor; and whether more follow."""
        query = select(webhook_deliveries).where(webhook_deliveries.c.tenant_id == tenant_id)
        if after is not None:
            query = query.where(webhook_deliveries.c.id > after)
        with self.state.store.transaction() as connection:
            rows = connection.execute(query.order_by(webhook_deliveries.c.id).limit(limit + 1)).mappings().all()
        found = [Delivery.model_validate(dict(row) | {"created_at": as_utc(row["created_at"])}) for row in rows]
        return found[:limit], len(found) > limit

    # --- delivery --------------------------------------------------------------------------------------------------

    async def job_finished(self, user_key: str, job_id: str) -> None:
        """The JobWorker's hook: an event for the finished job to each of its tenant's endpoints, in the background."""
        tenant_id, _, user_id = user_key.partition(":")
        endpoints = await asyncio.to_thread(self.endpoints, tenant_id)
        if not endpoints:
            return
        job = await asyncio.to_thread(finished_job, self.state.store, self.state.queue, user_key, job_id)
        if job is None:  # the user was deleted meanwhile: nothing to tell about them
            return
        event = JobEvent(id="evt_" + secrets.token_hex(12), type="job.succeeded" if job.status == "succeeded" else
                         "job.failed", created_at=datetime.now(UTC), user_id=user_id, job=job)
        signer = Webhook(await asyncio.to_thread(self.secret, tenant_id))
        for endpoint in endpoints:
            task = asyncio.create_task(self._deliver(signer, endpoint, event, tenant_id, user_key))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _deliver(self, signer: Webhook, endpoint: WebhookOut, event: JobEvent, tenant_id: str,
                       user_key: str) -> None:
        config = self.state.config
        body = event.model_dump_json().encode()
        retrying = AsyncRetrying(stop=stop_after_attempt(config.webhook_attempts),
                                 wait=wait_exponential(multiplier=config.webhook_backoff_seconds,
                                                       max=config.webhook_backoff_max_seconds),
                                 retry=retry_if_exception_type(_Undelivered))
        async with httpx.AsyncClient(timeout=config.webhook_timeout_seconds, follow_redirects=False,
                                     trust_env=False) as client:
            try:
                async for attempt in retrying:
                    with attempt:
                        # Deleted meanwhile (the job's row goes with its user): nothing more is sent or recorded.
                        if await asyncio.to_thread(self.state.queue.get, user_key, event.job.id) is None:
                            return
                        number = attempt.retry_state.attempt_number
                        await self._attempt(client, signer, endpoint, event, body, number, tenant_id, user_key)
            except RetryError:
                log.warning("webhook %s: event %s not delivered after %d attempts", endpoint.id, event.id,
                            config.webhook_attempts)

    async def _attempt(self, client: httpx.AsyncClient, signer: Webhook, endpoint: WebhookOut, event: JobEvent,
                       body: bytes, number: int, tenant_id: str, user_key: str) -> None:
        now = datetime.now(UTC)
        headers = {"content-type": "application/json", "webhook-id": event.id,
                   "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": signer.sign(event.id, now, body)}
        status, error = None, None
        try:
            response = await client.post(endpoint.url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500] or type(exc).__name__
        delivered = status is not None and 200 <= status < 300
        record = {"tenant_id": tenant_id, "webhook_id": endpoint.id, "event_id": event.id, "event_type": event.type,
                  "user_key": user_key, "attempt": number, "status_code": status, "error": error,
                  "delivered": delivered, "created_at": now}

        def write() -> bool:
            """Log the attempt unless the user was deleted while it was in flight. The job's row is locked first
            (FOR UPDATE on PostgreSQL; SQLite runs one writer at a time): a deletion that came earlier has removed
            it, so nothing about the user is written back; one that comes later waits, then deletes this row too."""
            with self.state.store.transaction(write=True) as connection:
                job_row = connection.execute(select(jobs.c.id).where(
                    jobs.c.id == event.job.id, jobs.c.user_key == user_key).with_for_update()).first()
                if job_row is None:
                    return False
                connection.execute(insert(webhook_deliveries).values(**record))
                return True

        if not await asyncio.to_thread(write):
            return  # deleted meanwhile: no retry either
        if not delivered:
            raise _Undelivered(error or f"HTTP {status}")
