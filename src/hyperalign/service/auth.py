"""Who is calling: the bearer key names the tenant; each key has its own rate limit."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import RateLimited, Unauthorized
from .state import ServiceState
from .tenants import Tenant, authenticate

bearer = HTTPBearer(auto_error=False, description="An API key from `hyperalign keys create`.")


@dataclass(frozen=True)
class Caller:
    key_id: str
    tenant: Tenant


def service(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    state: Annotated[ServiceState, Depends(service)],
) -> Caller:
    # One message for a missing, malformed, wrong or revoked key: the answer must not tell them apart.
    found = await asyncio.to_thread(authenticate, state.store, credentials.credentials) if credentials else None
    if found is None:
        raise Unauthorized("missing or invalid API key (Authorization: Bearer <key>)")
    key_id, tenant = found
    request.state.tenant_id = tenant.id  # so that no error message shows the client our key for its users
    for limit in state.limits:
        if not await state.limiter.hit(limit, key_id):
            reset = (await state.limiter.get_window_stats(limit, key_id)).reset_time
            raise RateLimited(max(1, math.ceil(reset - time.time())))
    return Caller(key_id, tenant)


CallerDep = Annotated[Caller, Depends(caller)]
StateDep = Annotated[ServiceState, Depends(service)]
