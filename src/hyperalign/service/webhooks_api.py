"""The webhooks API: a tenant registers endpoints for its job events, reads its signing secret with each new
endpoint, removes endpoints, and reads the log of every delivery attempt (webhooks.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from . import errors
from .auth import CallerDep
from .idempotency import IdempotencyDep
from .schemas import DIGITS_ONLY, DeliveryPage, WebhookCreated, WebhookIn, WebhookList
from .webhooks import Webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=errors.responses(400, 401, 429, 503))


def _webhooks(request: Request) -> Webhooks:
    hooks: Webhooks = request.app.state.webhooks
    return hooks


WebhooksDep = Annotated[Webhooks, Depends(_webhooks)]


@router.post("", status_code=201, response_model=WebhookCreated, responses=errors.responses(403, 409, 413),
             summary="Send this tenant's job events (job.succeeded, job.failed) to a URL, signed")
async def post_webhook(body: WebhookIn, caller: CallerDep, hooks: WebhooksDep, idempotent: IdempotencyDep) -> Response:
    return await idempotent.run(201, None, lambda connection: hooks.create(connection, caller.tenant, body.url,
                                                                           body.description))


@router.get("", response_model=WebhookList, summary="The tenant's webhook endpoints")
async def get_webhooks(caller: CallerDep, hooks: WebhooksDep) -> WebhookList:
    return WebhookList(data=await asyncio.to_thread(hooks.endpoints, caller.tenant.id))


@router.get("/deliveries", response_model=DeliveryPage,
            summary="Every delivery attempt of the tenant's events, oldest first, a page at a time")
async def get_deliveries(caller: CallerDep, hooks: WebhooksDep,
                         after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="the cursor"), DIGITS_ONLY] = None,
                         limit: Annotated[int, Query(ge=1, le=1000), DIGITS_ONLY] = 100) -> DeliveryPage:
    found, more = await asyncio.to_thread(lambda: hooks.deliveries(caller.tenant.id, after=after, limit=limit))
    return DeliveryPage(data=found, has_more=more, next_cursor=found[-1].id if more and found else None)


@router.delete("/{webhook_id}", status_code=204, responses=errors.responses(404),
               summary="Stop sending events to this endpoint")
async def delete_webhook(webhook_id: Annotated[str, Path(max_length=40)], caller: CallerDep,
                         hooks: WebhooksDep) -> Response:
    await asyncio.to_thread(hooks.delete, caller.tenant.id, webhook_id)
    return Response(status_code=204)
