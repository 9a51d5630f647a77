"""The tenant's other users as each inference's reference population (service/population.py): aggregates only —
their marker words reach no request, profile, response or log — from the same tenant only, and none under the
fewest users that make a population."""

from __future__ import annotations

import json
import logging

import pytest

from hyperalign.profiles.model import Profile
from hyperalign.service.population import POPULATION_NAME
from hyperalign.service.state import ServiceConfig
from service_support import QUOTE, Service, all_rows, start_service


def peer_text(marker: str, n: int) -> str:
    # Every user of the tenant exclaims; the model's default voice (the fake backend's reply) never does.
    return f"{marker} came by at dawn! The lamp turned {400 + n} times! {marker} counted them twice! {QUOTE}"


ANN = [peer_text("Morwenna", 100 + i) for i in range(3)]  # she exclaims exactly as much as everyone else


def add(service: Service, user: str, texts: list[str], tenant: str = "acme") -> None:
    with service.http(tenant) as http:
        http.post(f"/v1/users/{user}/examples", json={"examples": [{"text": t} for t in texts]}).raise_for_status()


def infer_ann(service: Service) -> tuple[Profile, dict]:
    with service.http() as http:
        http.post("/v1/users/ann/examples", json={"examples": [{"text": t} for t in ANN]}).raise_for_status()
        job = http.post("/v1/users/ann/jobs").json()
    done = service.wait_for_job("ann", job["id"])
    assert done["status"] == "succeeded", done
    with service.http() as http:
        answer = http.get("/v1/users/ann/profile").json()
    return Profile.model_validate(answer["profile"]), answer


@pytest.fixture
def serving(tmp_path):
    started = []

    def start(**config: object) -> Service:
        server, service = start_service(f"sqlite:///{tmp_path / f'service{len(started)}.sqlite3'}",
                                        config=ServiceConfig(job_poll_seconds=0.05, **config))
        started.append((server, service))
        return service

    yield start
    for server, service in started:
        server.__exit__()
        service.store.close()


def test_a_profile_is_compared_with_the_tenants_other_users_as_aggregates_only(serving, caplog):
    caplog.set_level(logging.DEBUG)
    service = serving(population_texts=400, population_min_users=5)
    markers = [f"zanzibarquokka{letter}" for letter in "abcdef"]  # letters only: one word each, as "Morwenna" is
    for i, marker in enumerate(markers):
        add(service, f"u{i}", [peer_text(marker, 2 * i), peer_text(marker, 2 * i + 1)])
    add(service, "v0", [peer_text("otherworldly", 1)] * 3, tenant="other")  # another tenant: never counted
    profile, answer = infer_ann(service)
    assert profile.contrast is not None
    assert (profile.contrast.reference, profile.contrast.reference_texts) == (POPULATION_NAME, 12)
    # A habit every user of the tenant shares is not ann's, though the default voice never exclaims.
    assert "punctuation:exclamation" not in [f.measure.metric for f in profile.facts]
    with service.http() as http:
        exported = http.get("/v1/users/ann/export").text
    seen = [json.dumps(r.messages) for r in service.backend.requests]
    seen += [json.dumps(answer), exported, caplog.text]
    for marker in [*markers, "otherworldly"]:
        assert not any(marker in text for text in seen), marker
    # in the database, the peers' texts are where they were put, and nowhere else (no profile, job or version)
    stored = {table: str(rows) for table, rows in all_rows(service.store).items() if table != "user_examples"}
    assert "profile_versions" in stored and "Morwenna" in stored["profile_versions"]
    assert not [table for table, rows in stored.items() for m in markers if m in rows]


def test_without_enough_other_users_the_profile_is_compared_with_the_default_voice_alone(serving):
    few = serving(population_texts=400, population_min_users=5)
    for i in range(4):
        add(few, f"u{i}", [peer_text(f"peer{i}", i)])
    profile, _ = infer_ann(few)
    assert profile.contrast is not None and profile.contrast.reference is None
    # against the default voice alone, ann's exclaiming is hers (the test above: not with the tenant's population)
    assert "punctuation:exclamation" in [f.measure.metric for f in profile.facts]
    off = serving()  # off by default
    for i in range(6):
        add(off, f"u{i}", [peer_text(f"peer{i}", i)])
    profile, _ = infer_ann(off)
    assert profile.contrast is not None and profile.contrast.reference is None


def test_one_prolific_user_is_not_a_population(serving):
    service = serving(population_texts=40, population_min_users=5)
    add(service, "prolific", [peer_text("prolific", i) for i in range(40)])
    for i in range(3):
        add(service, f"u{i}", [peer_text(f"peer{i}", i)])
    profile, _ = infer_ann(service)
    assert profile.contrast is not None and profile.contrast.reference is None
    add(service, "u3", [peer_text("peer3", 3)])  # five users now; the prolific one gives at most 40 / 5 texts
    with service.http() as http:
        job = http.post("/v1/users/ann/jobs", json={"full": True}).json()
    assert service.wait_for_job("ann", job["id"])["status"] == "succeeded"
    with service.http() as http:
        profile = Profile.model_validate(http.get("/v1/users/ann/profile").json()["profile"])
    assert profile.contrast is not None and profile.contrast.reference_texts == 8 + 4
