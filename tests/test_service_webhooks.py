"""Webhooks over real HTTP on SQLite and PostgreSQL: a real loopback receiver that fails first and then succeeds
gets the job's event again, signed as Standard Webhooks say (verified here with the standardwebhooks library and
with HMAC-SHA256 by hand); every attempt is in the delivery log; URLs with credentials, other schemes or private
addresses are refused; endpoints and logs are the tenant's own; a deleted user's deliveries go with them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from hyperalign.service.state import ServiceConfig
from service_support import all_rows, start_service


class Receiver:
    """A loopback HTTP server answering 500 to the first `failures` posts, then 204; it keeps what it was sent."""

    def __init__(self, failures: int, while_posting=lambda: None):
        self.failures, self.received = failures, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                while_posting()  # before the answer: the attempt is in flight
                self.send_response(500 if len(receiver.received) <= receiver.failures else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/hyperalign"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def subscribed(service, failures: int) -> Iterator[Receiver]:
    """A Receiver (see there) that is the tenant's webhook endpoint, closed on exit."""
    with Receiver(failures) as receiver:
        with service.http() as http:
            http.post("/v1/webhooks", json={"url": receiver.url}).raise_for_status()
        yield receiver


@pytest.fixture
def hooked(database_url):
    config = ServiceConfig(job_poll_seconds=0.05, webhook_allow_private_hosts=True, webhook_attempts=3,
                           webhook_backoff_seconds=0.05, webhook_backoff_max_seconds=0.2)
    server, service = start_service(database_url, config=config)
    yield service
    server.__exit__()
    service.store.close()


def deliveries(service, tenant: str = "acme", until=lambda d: True, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    with service.http(tenant) as http:
        while True:
            found = http.get("/v1/webhooks/deliveries").json()["data"]
            if until(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def test_a_failing_receiver_gets_the_signed_event_again_and_every_attempt_is_logged(hooked):
    with Receiver(failures=1) as receiver:
        with hooked.http() as http:
            created = http.post("/v1/webhooks", json={"url": receiver.url, "description": "ops"})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        job = hooked.infer()
        log = deliveries(hooked, until=lambda found: any(d["delivered"] for d in found))
    assert [(d["attempt"], d["status_code"], d["delivered"]) for d in log] == [(1, 500, False), (2, 204, True)]
    assert {d["webhook_id"] for d in log} == {created.json()["id"]} and log[0]["event_type"] == "job.succeeded"
    assert len(receiver.received) == 2
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert ids == {log[0]["event_id"]}  # one event, tried twice
    for headers, body in receiver.received:
        event = Webhook(secret).verify(body, headers)  # the library a receiver would use
        key = base64.b64decode(secret.removeprefix("whsec_"))  # and by hand: HMAC-SHA256 over id.timestamp.body
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(headers["webhook-signature"], expected)
        assert event["type"] == "job.succeeded" and event["user_id"] == "ann"
        assert event["job"]["id"] == job["id"] and event["job"]["result_version"] == 1
    tampered = receiver.received[0][1].replace(b'"ann"', b'"bob"')
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(tampered, receiver.received[0][0])


def test_a_receiver_that_never_answers_well_is_tried_the_configured_times(hooked):
    with subscribed(hooked, failures=100):
        hooked.infer()
        log = deliveries(hooked, until=lambda found: len(found) >= 3)
    assert [(d["attempt"], d["delivered"]) for d in log] == [(1, False), (2, False), (3, False)]


def test_deleting_the_user_stops_the_retries_of_their_event(database_url):
    config = ServiceConfig(job_poll_seconds=0.05, webhook_allow_private_hosts=True, webhook_attempts=6,
                           webhook_backoff_seconds=0.5, webhook_backoff_max_seconds=0.5)
    server, service = start_service(database_url, config=config)
    try:
        with subscribed(service, failures=100) as receiver:
            service.infer()
            deliveries(service, until=lambda found: len(found) >= 1)  # the first attempt failed; retries are due
            with service.http() as http:
                assert http.delete("/v1/users/ann").status_code == 204
            time.sleep(2.5)  # several backoff periods: retries, had they gone on, would have been made and logged
            left = deliveries(service, until=lambda found: False, timeout=0)
    finally:
        server.__exit__()
        service.store.close()
    assert left == [] and len(receiver.received) <= 2  # the attempt in flight at the deletion at most


@pytest.mark.parametrize("url", ["https://user:secret@hooks.example.com/x", "ftp://hooks.example.com/x",
                                 "https://hooks.example.com/x?token=abc", "hooks.example.com", "https://"])
def test_a_webhook_url_with_credentials_or_of_another_kind_is_refused(service, url):
    with service.http() as http:
        answer = http.post("/v1/webhooks", json={"url": url})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "url"
        assert http.get("/v1/webhooks").json()["data"] == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "192.168.0.1", "0",
                                  "2130706433", "127.1"])
def test_a_private_address_is_refused_unless_allowed(service, host):
    with service.http() as http:
        answer = http.post("/v1/webhooks", json={"url": f"http://{host}:9000/hook"})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"


def test_endpoints_and_deliveries_are_the_tenants_own(hooked):
    with Receiver(failures=0) as receiver:
        with hooked.http(**{"Idempotency-Key": "hook-1"}) as http:
            first = http.post("/v1/webhooks", json={"url": receiver.url}).json()
            again = http.post("/v1/webhooks", json={"url": receiver.url}).json()
        assert again["id"] == first["id"]  # a retried creation makes one endpoint
        hooked.infer()
        assert deliveries(hooked, until=lambda found: bool(found))[0]["delivered"]
        with hooked.http("other") as http:
            assert http.get("/v1/webhooks").json()["data"] == []
            assert http.get("/v1/webhooks/deliveries").json()["data"] == []
            assert http.delete(f"/v1/webhooks/{first['id']}").status_code == 404
        hooked.infer("bo")
        assert len(deliveries(hooked, until=lambda found: len(found) == 2)) == 2
        with hooked.http() as http:
            assert [w["id"] for w in http.get("/v1/webhooks").json()["data"]] == [first["id"]]
            assert http.delete("/v1/users/ann").status_code == 204  # ann's deliveries go with her
            left = deliveries(hooked, until=lambda found: len(found) == 1)
            assert len(left) == 1 and left[0]["delivered"]  # bo's
            assert http.delete(f"/v1/webhooks/{first['id']}").status_code == 204
            assert http.get("/v1/webhooks").json()["data"] == []
    dump = json.dumps({n: [list(map(str, r)) for r in rows] for n, rows in all_rows(hooked.store).items()})
    assert ":ann" not in dump


def test_the_delivery_log_comes_a_page_at_a_time(hooked):
    with subscribed(hooked, failures=2):
        hooked.infer()
        deliveries(hooked, until=lambda found: len(found) >= 3)
        with hooked.http() as http:
            first = http.get("/v1/webhooks/deliveries", params={"limit": 2}).json()
            rest = http.get("/v1/webhooks/deliveries", params={"limit": 2, "after": first["next_cursor"]}).json()
    assert [d["attempt"] for d in first["data"]] == [1, 2] and first["has_more"]
    assert [d["attempt"] for d in rest["data"]] == [3] and not rest["has_more"] and rest["next_cursor"] is None


def test_a_user_deleted_while_an_attempt_is_in_flight_leaves_no_log_of_it(hooked):
    """The deletion lands between the post and the logging of its answer: the attempt is not written back, and no
    retry follows (with the check before each attempt alone, this row would outlive the user)."""
    def delete_the_user() -> None:
        if len(receiver.received) == 1:
            with hooked.http() as http:
                assert http.delete("/v1/users/ann").status_code == 204

    with Receiver(failures=100, while_posting=delete_the_user) as receiver:
        with hooked.http() as http:
            http.post("/v1/webhooks", json={"url": receiver.url}).raise_for_status()
        # Not hooked.infer(): the user (and so the job) may be gone before a poll reads "succeeded"; the event says it.
        job = hooked.start_job()
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # past the backoff (0.05-0.2 s): a retry, had one been made, would be logged by now
        left = deliveries(hooked, until=lambda found: False, timeout=0)
    assert len(receiver.received) == 1 and left == []
    event = json.loads(receiver.received[0][1])
    assert event["type"] == "job.succeeded" and event["job"]["id"] == job["id"]
