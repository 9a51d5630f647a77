"""Per-end-user limits on the chat endpoint, over real HTTP with the openai client on SQLite and PostgreSQL: requests
per minute and tokens per day, each per end user of a tenant, answered 429 with Retry-After in OpenAI's shape;
streams count too; a deleted user's count goes with them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import openai
import pytest

from hyperalign.service.state import ServiceConfig
from service_support import all_rows, start_service

HI = [{"role": "user", "content": "Write a note."}]


@pytest.fixture
def limited(request, database_url):
    server, service = start_service(database_url, config=ServiceConfig(job_poll_seconds=0.05, **request.param))
    yield service
    server.__exit__()
    service.store.close()


def sdk(service, tenant: str = "acme") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.keys[tenant], max_retries=0)


@pytest.mark.parametrize("limited", [{"user_rate_limit": "2/minute"}], indirect=True)
def test_an_end_user_over_their_request_limit_is_told_when_to_retry(limited):
    client = sdk(limited)
    for _ in range(2):
        client.chat.completions.create(model="m", messages=HI, user="ann")
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="m", messages=HI, user="ann")
    error = refused.value.body
    assert error["code"] == "user_rate_limit_exceeded" and "end user" in error["message"]
    assert int(refused.value.response.headers["retry-after"]) >= 1
    client.chat.completions.create(model="m", messages=HI, user="bo")  # another user: their own count
    client.chat.completions.create(model="m", messages=HI)  # no end user: only the key's limit
    sdk(limited, "other").chat.completions.create(model="m", messages=HI, user="ann")  # another tenant's ann


@pytest.mark.parametrize("limited", [{"user_tokens_per_day": 20}], indirect=True)
def test_an_end_user_over_their_token_budget_waits_for_the_next_day(limited):
    client = sdk(limited)
    first = client.chat.completions.create(model="m", messages=HI, user="ann")
    assert 0 < first.usage.total_tokens < 20
    assert first.usage.prompt_tokens_details.cached_tokens == 0  # OpenAI's field; a backend without a prefix cache
    stream = client.chat.completions.create(model="m", messages=HI, user="ann", stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)  # counted, though estimated
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="m", messages=HI, user="ann")
    assert refused.value.body["code"] == "user_token_budget_exceeded"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 86_400
    client.chat.completions.create(model="m", messages=HI, user="bo")
    with limited.http() as http:  # the count is part of what is kept about the user, and goes with them
        http.post("/v1/users/ann/examples", json={"examples": [{"text": "A note."}]}).raise_for_status()
        (today,) = http.get("/v1/users/ann/export").json()["token_usage"]
        assert today["tokens"] >= 20 and today["day"] == datetime.now(UTC).date().isoformat()
        only_chatted = http.get("/v1/users/bo/export").json()  # a count is all that is kept of bo: it is exported
        assert only_chatted["examples"] == [] and [d["day"] for d in only_chatted["token_usage"]] == [today["day"]]
        assert http.delete("/v1/users/ann").status_code == 204
        rows = all_rows(limited.store)["user_token_usage"]
        assert [row[0].endswith(":bo") for row in rows] == [True]
        assert ":ann" not in json.dumps([list(map(str, r)) for r in rows])
        assert http.delete("/v1/users/bo").status_code == 204  # a count is enough to be deleted by, too
        assert http.get("/v1/users/bo/export").status_code == 404 and all_rows(limited.store)["user_token_usage"] == []
    client.chat.completions.create(model="m", messages=HI, user="ann")  # a new ann starts from zero


def test_limits_are_checked_when_configured():
    with pytest.raises(ValueError, match="allows 0 requests"):
        ServiceConfig(user_rate_limit="0/minute")
    with pytest.raises(ValueError):
        ServiceConfig(user_tokens_per_day=0)
