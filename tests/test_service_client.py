"""The typed Python client (hyperalign.client), sync and async, against a real running service on SQLite and
PostgreSQL: the profiles API end to end through it, errors as typed exceptions, Idempotency-Key, pagination; and
importing it pulls in none of the server's stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hyperalign.client import (
    AsyncProfilesClient,
    AuthenticationError,
    ConflictError,
    EditIn,
    ExampleIn,
    NotFoundError,
    ProfileOut,
    ProfilesClient,
)
from hyperalign.profiles.model import Profile
from service_support import EXAMPLE_TEXT, QUOTE


def test_the_sync_client_goes_from_examples_to_deletion(service):
    with ProfilesClient(service.url, service.keys["acme"]) as client:
        added = client.add_examples("org/42", [EXAMPLE_TEXT, ExampleIn(prompt="Storm?", text=f"Storm. {QUOTE}")])
        assert (added.user_id, added.added, added.total) == ("org/42", 2, 2)
        assert [e.text for e in client.examples("org/42")][0] == EXAMPLE_TEXT
        job = client.wait_for_job("org/42", client.start_job("org/42").id, timeout=30, poll=0.05)
        assert job.status == "succeeded" and job.result_version == 1 and job.thin is False
        profile = client.profile("org/42")
        assert isinstance(profile, ProfileOut) and isinstance(profile.profile, Profile)
        assert profile.user_id == profile.profile.user_id == "org/42"
        target = next(h for h in profile.profile.hypotheses if h.origin == "inferred")
        edited = client.edit_profile("org/42", EditIn(pin=[target.id], add=[{"aspect": "writing_style",
                                                                             "statement": "Signs every note."}]),
                                     author="Ann herself")
        assert edited.version.version == 2 and edited.version.author == "Ann herself"
        assert [v.action for v in client.versions("org/42")] == ["infer", "edit"]
        assert any("Signs every note." in line for line in client.diff("org/42", 1, 2).changes)
        exported = client.export("org/42")
        assert len(exported.examples) == 2 and len(exported.profile_versions) == 2 and exported.jobs[0].id == job.id
        assert client.review_link("org/42").url.startswith(f"{service.url}/review/")
        client.revoke_review_links("org/42")
        assert list(client.iter_users(page_size=1)) == ["org/42"]
        client.delete_user("org/42")
        with pytest.raises(NotFoundError) as missing:
            client.profile("org/42")
        assert missing.value.status == 404 and missing.value.code == "not_found"


def test_errors_are_typed_and_idempotency_keys_travel(service):
    with ProfilesClient(service.url, "ha-wrong-key") as stranger, pytest.raises(AuthenticationError):
        stranger.users()
    with ProfilesClient(service.url, service.keys["acme"]) as client:
        first = client.add_examples("ann", ["One text."], idempotency_key="k-1")
        assert client.add_examples("ann", ["One text."], idempotency_key="k-1") == first
        with pytest.raises(ConflictError) as reused:
            client.add_examples("ann", ["Another text."], idempotency_key="k-1")
        assert reused.value.code == "idempotency_key_reused" and reused.value.param == "Idempotency-Key"
        assert len(client.examples("ann")) == 1
    with ProfilesClient(service.url, service.keys["other"]) as other, pytest.raises(NotFoundError):
        other.examples("ann")  # another tenant's user


async def test_the_async_client_does_the_same(service):
    async with AsyncProfilesClient(service.url, service.keys["acme"]) as client:
        for user in ("bo", "ann", "cy"):
            await client.add_examples(user, [EXAMPLE_TEXT])
        job = await client.start_job("ann")
        done = await client.wait_for_job("ann", job.id, timeout=30, poll=0.05)
        assert done.status == "succeeded"
        assert (await client.profile("ann", version=1)).version.version == 1
        assert [u async for u in client.iter_users(page_size=2)] == ["ann", "bo", "cy"]
        webhooks = await client.webhooks()
        assert webhooks.data == []
        with pytest.raises(NotFoundError):
            await client.delete_webhook("wh_none")
        await client.delete_user("ann")
        with pytest.raises(NotFoundError):
            await client.export("ann")


def test_importing_the_client_pulls_in_none_of_the_server():
    code = ("import sys, hyperalign.client; "
            "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'prometheus_client', 'limits', "
            "'opentelemetry', 'hyperalign.service.app', 'hyperalign.service.state') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.strip() == "[]"
