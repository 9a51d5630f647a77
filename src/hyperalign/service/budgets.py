"""Per-end-user limits on the chat endpoint, beside the per-key rate limit (LiteLLM's customer budgets):

- `user_rate_limit`: requests per end user, in the `limits` notation ("60/minute"); counted in this process, as the
  per-key limit is (a shared counter across replicas needs a `limits` storage such as Redis).
- `user_tokens_per_day`: prompt plus completion tokens per end user per UTC day, counted in the database (shared
  by every replica, kept across restarts). A request is admitted while the day's count is under the budget; what
  it then uses is added when it ends, so one request may finish past the budget, and the next is refused until
  UTC midnight.

An end user is a tenant's user (the same id under two tenants is two users). Either limit answers 429 in OpenAI's
shape with Retry-After: `user_rate_limit_exceeded` or `user_token_budget_exceeded`."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from .errors import RateLimited
from .schemas import TokenDay
from .state import ServiceState
from .tables import user_token_usage
from .usage import Usage
from .users import EndUser


def _today() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def admit(state: ServiceState, user: EndUser) -> None:
    """Refuse the request (RateLimited) when the end user is over either limit."""
    for limit in state.user_limits:
        if not await state.limiter.hit(limit, "user", user.key):
            reset = (await state.limiter.get_window_stats(limit, "user", user.key)).reset_time
            raise RateLimited(max(1, math.ceil(reset - time.time())),
                              "rate limit exceeded for this end user", "user_rate_limit_exceeded")
    budget = state.config.user_tokens_per_day
    if budget is not None and await asyncio.to_thread(used_today, state, user) >= budget:
        midnight = _today() + timedelta(days=1)
        raise RateLimited(max(1, math.ceil((midnight - datetime.now(UTC)).total_seconds())),
                          f"this end user's token budget ({budget:,} a day) is used up", "user_token_budget_exceeded")


def used_today(state: ServiceState, user: EndUser) -> int:
    query = select(user_token_usage.c.tokens).where(user_token_usage.c.user_key == user.key,
                                                    user_token_usage.c.day == _today().date().isoformat())
    with state.store.transaction() as connection:
        return int(connection.execute(query).scalar() or 0)


def usage_by_day(state: ServiceState, user: EndUser) -> list[TokenDay]:
    """Every day's count kept for the user, oldest first (for the export: what is kept about them)."""
    table = user_token_usage
    query = select(table.c.day, table.c.tokens).where(table.c.user_key == user.key).order_by(table.c.day)
    with state.store.transaction() as connection:
        return [TokenDay(day=day, tokens=tokens) for day, tokens in connection.execute(query)]


def charge(state: ServiceState, user: EndUser, usage: Usage) -> None:
    """Add what a request used to the end user's count for today (only when a budget is set: no write otherwise)."""
    if state.config.user_tokens_per_day is None or usage.total <= 0:
        return
    day, table = _today().date().isoformat(), user_token_usage
    row = (table.c.user_key == user.key) & (table.c.day == day)
    for _ in range(2):
        try:
            with state.store.transaction(write=True) as connection:
                if not connection.execute(update(table).where(row).values(tokens=table.c.tokens + usage.total)
                                          ).rowcount:
                    connection.execute(insert(table).values(user_key=user.key, day=day, tokens=usage.total))
            return
        except IntegrityError:  # another request made today's row first: add to it
            continue
