"""Idempotency-Key on the POST routes, over real HTTP on SQLite and PostgreSQL: a retry gets the first answer and
stores nothing twice, another request under the same key is refused in OpenAI's shape, keys are per tenant and
expire, two requests with one key at once store once, and a deleted user's recorded answers go with them."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from hyperalign.service.tables import idempotency_keys
from service_support import EXAMPLE_TEXT, all_rows

EXAMPLES = {"examples": [{"text": EXAMPLE_TEXT}]}


def test_a_retried_post_gets_the_first_answer_and_stores_once(service):
    with service.http(**{"Idempotency-Key": "req-1"}) as http:
        first = http.post("/v1/users/ann/examples", json=EXAMPLES)
        again = http.post("/v1/users/ann/examples", json=EXAMPLES)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() == {"user_id": "ann", "added": 1, "total": 1}
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    with service.http() as http:
        assert len(http.get("/v1/users/ann/examples").json()) == 1
        plain = http.post("/v1/users/ann/examples", json=EXAMPLES)  # without a key: done each time
    assert plain.json()["total"] == 2


def test_the_same_key_with_another_request_is_refused_and_stores_nothing(service):
    with service.http(**{"Idempotency-Key": "req-1"}) as http:
        assert http.post("/v1/users/ann/examples", json=EXAMPLES).status_code == 201
        other_body = http.post("/v1/users/ann/examples", json={"examples": [{"text": "Another text."}]})
        other_path = http.post("/v1/users/bo/examples", json=EXAMPLES)
    for answer in (other_body, other_path):
        assert answer.status_code == 409
        error = answer.json()["error"]
        assert error["code"] == "idempotency_key_reused" and error["param"] == "Idempotency-Key"
        assert error["type"] == "invalid_request_error"
    with service.http() as http:
        assert len(http.get("/v1/users/ann/examples").json()) == 1
        assert http.get("/v1/users/bo/examples").status_code == 404


def test_keys_belong_to_their_tenant(service):
    for tenant in ("acme", "other"):
        with service.http(tenant, **{"Idempotency-Key": "shared-key"}) as http:
            answer = http.post("/v1/users/ann/examples", json=EXAMPLES)
            assert answer.status_code == 201 and "idempotent-replayed" not in answer.headers, tenant


def test_an_expired_key_is_a_new_request(service):
    with service.http(**{"Idempotency-Key": "req-1"}) as http:
        assert http.post("/v1/users/ann/examples", json=EXAMPLES).json()["total"] == 1
        with service.store.transaction(write=True) as connection:  # its time runs out
            connection.execute(update(idempotency_keys).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        again = http.post("/v1/users/ann/examples", json=EXAMPLES)
    assert again.json()["total"] == 2 and "idempotent-replayed" not in again.headers


def test_two_requests_with_one_key_at_once_store_once(service):
    answers: list[dict] = []
    start = threading.Barrier(4)

    def send() -> None:
        with service.http(**{"Idempotency-Key": "race"}) as http:
            start.wait()
            answers.append(http.post("/v1/users/ann/examples", json=EXAMPLES).json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 4 and all(a == answers[0] for a in answers), answers
    with service.http() as http:
        assert len(http.get("/v1/users/ann/examples").json()) == 1


def test_a_retried_job_request_names_the_same_job_even_after_it_ran(service):
    with service.http() as http:
        http.post("/v1/users/ann/examples", json=EXAMPLES).raise_for_status()
    with service.http(**{"Idempotency-Key": "job-1"}) as http:
        job = http.post("/v1/users/ann/jobs", json={"full": False})
        assert job.status_code == 202
        assert service.wait_for_job("ann", job.json()["id"])["status"] == "succeeded"
        again = http.post("/v1/users/ann/jobs", json={"full": False})
    assert again.status_code == 202 and again.json()["id"] == job.json()["id"]
    with service.http() as http:
        assert len(http.get("/v1/users/ann/export").json()["jobs"]) == 1


def test_a_deleted_users_recorded_answers_go_with_them(service):
    with service.http(**{"Idempotency-Key": "req-1"}) as http:
        http.post("/v1/users/ann/examples", json=EXAMPLES).raise_for_status()
    with service.http(**{"Idempotency-Key": "req-2"}) as http:
        http.post("/v1/users/bo/examples", json=EXAMPLES).raise_for_status()
    with service.http() as http:
        assert http.delete("/v1/users/ann").status_code == 204
    dump = json.dumps({n: [list(map(str, r)) for r in rows] for n, rows in all_rows(service.store).items()})
    assert ":ann" not in dump and '"ann"' not in dump and "req-1" not in dump
    assert "req-2" in dump  # another user's record stays


def test_a_malformed_key_is_a_bad_request(service):
    with service.http(**{"Idempotency-Key": "has a space"}) as http:
        answer = http.post("/v1/users/ann/examples", json=EXAMPLES)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "Idempotency-Key"
