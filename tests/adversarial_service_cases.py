"""The adversarial pass over HTTP: hostile requests and upstream faults given to a real `hyperalign serve` process,
as an API client (httpx) would send them. Shared by tests/test_adversarial_service.py (CI) and
benchmarks/adversarial_pass.py (the counts).

Two services run on loopback, each its own process with the fake backend and a SQLite store: `builtin` answers
chats with the built-in backend; `proxied` sends them to an OpenAI-compatible test server whose replies a case
scripts (an upstream that refuses the operator's key, is overloaded, answers garbage). Every case says what a
correct service does: the status it answers (a client's error is a 4xx with OpenAI's error shape, an upstream's
a 502/503), what it must never show (a key, a secret, a deleted text), what must not come back. Outcomes other
than "ok": wrong_status, traceback (a 500 or a traceback in the body), leak, lost_work (deleted data came back or
is still stored), crashed (the probe itself failed)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adversarial_cases import COMMAND, _env
from openai_test_server import OpenAITestServer, completion, error, raw
from serve_process import free_port, wait_until_healthy

OPERATOR_KEY = "sk-operator-0ffb1e5ecret"
QUOTE = "Gears first, opinions later."
TEXTS = [f"Fog again. The lamp turned {n} times last night. {QUOTE}" for n in (412, 97, 1203)]
CLIENT_ERRORS = {400, 404, 413, 422}


@dataclass
class ServiceCase:
    name: str
    category: str
    probe: Callable[[ServiceHarness], tuple[str, str] | None]  # None: ok; else (outcome, detail)


class ServiceHarness:
    """Both services (module docstring), started on enter, stopped on exit; a key for tenant "adv" on each."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.upstream = OpenAITestServer()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self._logs: list[Any] = []

    def __enter__(self) -> ServiceHarness:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.upstream.start()
        for name in ("builtin", "proxied"):
            store = self.folder / f"{name}.sqlite3"
            made = subprocess.run([*COMMAND, "keys", "create", "--tenant", "adv", "--store", str(store)],
                                  capture_output=True, text=True, env=_env(self.folder, {}), timeout=120)
            assert made.returncode == 0, made.stderr
            self.keys[name] = made.stdout.strip()
            port = free_port()
            extra = (["--upstream-base-url", self.upstream.base_url, "--upstream-api-key", OPERATOR_KEY]
                     if name == "proxied" else [])
            log = open(self.folder / f"{name}.log", "wb")  # the process's output, closed on exit
            self._logs.append(log)
            self.processes[name] = subprocess.Popen(
                [*COMMAND, "serve", "--store", str(store), "--port", str(port), "--rate-limit", "100000/minute",
                 "--job-lease-seconds", "5", *extra], env=_env(self.folder, {}), stdout=log, stderr=log)
            self.urls[name] = f"http://127.0.0.1:{port}"
        for name, url in self.urls.items():
            wait_until_healthy(url, self.processes[name], seconds=90, log=lambda name=name: self.log(name))
        return self

    def __exit__(self, *_: object) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in self._logs:
            log.close()
        self.upstream.stop()

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def http(self, name: str = "builtin", **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[name], timeout=60,
                            headers={"Authorization": f"Bearer {self.keys[name]}", **headers})

    def profiled(self, user: str, name: str = "builtin") -> dict[str, Any]:
        """A user with texts and an inferred profile (the job waited for); the profile document."""
        with self.http(name) as client:
            client.post(f"/v1/users/{user}/examples",
                        json={"examples": [{"text": t} for t in TEXTS]}).raise_for_status()
            job = client.post(f"/v1/users/{user}/jobs").json()
            deadline = time.monotonic() + 60
            while client.get(f"/v1/users/{user}/jobs/{job['id']}").json()["status"] not in ("succeeded", "failed"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the job of {user} did not finish")
                time.sleep(0.1)
            return dict(client.get(f"/v1/users/{user}/profile").json()["profile"])


def judge(response: httpx.Response, statuses: set[int], forbidden: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """The common verdict on one answer: the expected status, OpenAI's error shape on an error, nothing forbidden."""
    text = response.text
    if response.status_code >= 500 and response.status_code not in statuses or "Traceback" in text:
        return "traceback", f"{response.status_code}: {text[:200]}"
    leaked = [f for f in forbidden if f in text or any(f in v for v in response.headers.values())]
    if leaked:
        return "leak", f"showed {leaked[0]!r}: {text[:200]}"
    if response.status_code not in statuses:
        return "wrong_status", f"{response.status_code} (expected {sorted(statuses)}): {text[:200]}"
    if response.status_code >= 400:
        try:
            body = response.json()
            assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        except (ValueError, KeyError, TypeError, AssertionError):
            return "wrong_status", f"not OpenAI's error shape: {text[:200]}"
    return None


def chat(body: Any, *, name: str = "builtin", statuses: set[int] = CLIENT_ERRORS - {404},
         forbidden: tuple[str, ...] = ()) -> Callable[[ServiceHarness], tuple[str, str] | None]:
    def probe(h: ServiceHarness) -> tuple[str, str] | None:
        with h.http(name) as client:
            content = body if isinstance(body, (bytes, str)) else json.dumps(body)
            response = client.post("/v1/chat/completions", content=content,
                                   headers={"Content-Type": "application/json"})
        return judge(response, statuses, forbidden)
    return probe


def upstream(reply: Any, statuses: set[int], *, retry_after: str | None = None) -> Callable[[ServiceHarness],
                                                                                          tuple[str, str] | None]:
    """The proxied service's upstream answers `reply` to every call; the client must get one of `statuses`,
    never the operator's key, and the upstream's Retry-After when it gave one."""
    def probe(h: ServiceHarness) -> tuple[str, str] | None:
        h.upstream.default = reply
        try:
            with h.http("proxied") as client:
                response = client.post("/v1/chat/completions", json={
                    "model": "m", "messages": [{"role": "user", "content": "Hello."}]})
        finally:
            h.upstream.default = completion()
        verdict = judge(response, statuses, forbidden=(OPERATOR_KEY, OPERATOR_KEY[:12]))
        if verdict is None and retry_after is not None and response.headers.get("retry-after") != retry_after:
            return "wrong_status", f"Retry-After {response.headers.get('retry-after')!r}, the upstream said {retry_after}"
        return verdict
    return probe


def request(method: str, path: str, statuses: set[int], *, body: Any = None, profiled: str | None = None,
            forbidden: tuple[str, ...] = ()) -> Callable[[ServiceHarness], tuple[str, str] | None]:
    def probe(h: ServiceHarness) -> tuple[str, str] | None:
        if profiled:
            h.profiled(profiled)
        with h.http() as client:
            response = client.request(method, path, json=body) if body is not None else client.request(method, path)
        return judge(response, statuses, forbidden)
    return probe


# --- deleted data stays deleted -----------------------------------------------------------------------------------

def _deleted_user_is_gone(h: ServiceHarness) -> tuple[str, str] | None:
    marker = "Zanzibar-lighthouse-4471"
    with h.http() as client:
        client.post("/v1/users/gone1/examples", json={"examples": [{"text": f"{t} {marker}"} for t in TEXTS]})
        client.delete("/v1/users/gone1").raise_for_status()
        for path in ("/v1/users/gone1/profile", "/v1/users/gone1/export", "/v1/users/gone1/examples"):
            answer = client.get(path)
            if answer.status_code != 404 or marker in answer.text:
                return "lost_work", f"{path} after DELETE: {answer.status_code} {answer.text[:120]}"
        listed = client.get("/v1/users", params={"limit": 200}).text
    if "gone1" in listed:
        return "lost_work", "the deleted user is still listed"
    stored = b"".join(p.read_bytes() for p in h.folder.glob("builtin.sqlite3*"))
    return ("lost_work", "the deleted text is still in the database files") if marker.encode() in stored else None


def _deleted_profile_is_gone(h: ServiceHarness) -> tuple[str, str] | None:
    h.profiled("gone2")
    with h.http() as client:
        client.delete("/v1/users/gone2").raise_for_status()
        for path in ("/v1/users/gone2/profile", "/v1/users/gone2/profile/versions", "/v1/users/gone2/export"):
            if client.get(path).status_code != 404:
                return "lost_work", f"{path} answers after DELETE"
        again = client.post("/v1/users/gone2/jobs")
        if again.status_code < 400:  # a job for a user with no texts left must not bring a profile back
            time.sleep(1.0)
            if client.get("/v1/users/gone2/profile").status_code != 404:
                return "lost_work", "a job after DELETE made a profile again"
    return None


def _deleted_hypothesis_stays_deleted(h: ServiceHarness) -> tuple[str, str] | None:
    profile = h.profiled("gone3")
    said = profile["hypotheses"] + profile["facts"]  # a person deletes either by id
    if not said:
        return "crashed", "the profile has no hypothesis or fact to delete"
    victim = said[0]
    with h.http() as client:
        client.patch("/v1/users/gone3/profile", json={"delete": [victim["id"]]}).raise_for_status()
        client.post("/v1/users/gone3/examples", json={"examples": [{"text": f"Another night. {QUOTE}"}]})
        job = client.post("/v1/users/gone3/jobs", json={"full": True}).json()
        deadline = time.monotonic() + 60
        while client.get(f"/v1/users/gone3/jobs/{job['id']}").json()["status"] not in ("succeeded", "failed"):
            if time.monotonic() > deadline:
                return "crashed", "the update job did not finish"
            time.sleep(0.1)
        current = client.get("/v1/users/gone3/profile").json()["profile"]
        back = [x for x in current["hypotheses"] + current["facts"]
                if x["id"] == victim["id"] or x["statement"] == victim["statement"]]
    return ("lost_work", f"deleted {victim['statement']!r} came back") if back else None


def _deleting_twice_is_a_404(h: ServiceHarness) -> tuple[str, str] | None:
    with h.http() as client:
        client.post("/v1/users/gone4/examples", json={"examples": [{"text": TEXTS[0]}]})
        client.delete("/v1/users/gone4")
        return judge(client.delete("/v1/users/gone4"), {404})


def _deleted_example_is_gone(h: ServiceHarness) -> tuple[str, str] | None:
    with h.http() as client:
        added = client.post("/v1/users/gone5/examples", json={"examples": [{"text": "Delete me, 8812."},
                                                                           {"text": TEXTS[0]}]})
        added.raise_for_status()
        examples = client.get("/v1/users/gone5/examples").json()
        target = next(e for e in examples if "8812" in e["text"])
        client.delete(f"/v1/users/gone5/examples/{target['id']}").raise_for_status()
        if "8812" in client.get("/v1/users/gone5/export").text:
            return "lost_work", "the deleted example is still exported"
    return None


def cases() -> list[ServiceCase]:
    c: list[ServiceCase] = []
    add = c.append
    for name, probe in [("a deleted user's texts, profile and listing", _deleted_user_is_gone),
                        ("a deleted user's profile and versions", _deleted_profile_is_gone),
                        ("a hypothesis the person deleted is not re-inferred", _deleted_hypothesis_stays_deleted),
                        ("deleting a deleted user", _deleting_twice_is_a_404),
                        ("a deleted example is not exported", _deleted_example_is_gone)]:
        add(ServiceCase(name, "deleted data", probe))

    # Secrets: the probes say nothing about the deployment; the operator's key never reaches a client.
    add(ServiceCase("/healthz names no host, path or version", "secrets", lambda h: _quiet_probe(h, "/healthz")))
    add(ServiceCase("/readyz names no host, path or version", "secrets", lambda h: _quiet_probe(h, "/readyz")))
    add(ServiceCase("/v1/status without a key", "secrets",
                    lambda h: judge(httpx.get(f"{h.urls['proxied']}/v1/status"), {401})))
    add(ServiceCase("/v1/status with a key hides the operator's key", "secrets",
                    lambda h: judge(h.http("proxied").get("/v1/status"), {200}, forbidden=(OPERATOR_KEY,))))
    add(ServiceCase("the service's log holds no operator key", "secrets",
                    lambda h: ("leak", "the proxied service's log shows the operator's key")
                    if OPERATOR_KEY in h.log("proxied") else None))

    # Upstream failures: the service's errors, never the upstream's status as the client's own.
    for name, reply, statuses, retry in [
        ("the upstream refuses the operator's key (401)",
         error(401, f"Incorrect API key provided: {OPERATOR_KEY[:12]}****"), {502}, None),
        ("the upstream forbids (403)", error(403, "forbidden for this key"), {502}, None),
        ("the upstream does not know the model (404)", error(404, "The model `m` does not exist", code="model_not_found"),
         {502}, None),
        ("the upstream is rate-limited (429, Retry-After)", error(429, "slow down", headers={"Retry-After": "7"}),
         {503}, "7"),
        ("the upstream fails (500)", error(500, "internal"), {502, 503}, None),
        ("the upstream is overloaded (503, Retry-After)", error(503, "overloaded", headers={"Retry-After": "3"}),
         {503}, "3"),
        ("the upstream answers garbage", raw(b"<html>oops</html>", content_type="text/html"), {502}, None),
        ("the upstream answers JSON without choices", raw(b'{"id": "x"}'), {502}, None),
    ]:
        add(ServiceCase(name, "upstream errors", upstream(reply, statuses, retry_after=retry)))

    # Unbounded profile data through the API.
    add(ServiceCase("PATCH profile: reword a hypothesis with 1.5 MB", "unbounded profile data", _huge_reword))
    for name, body in [
        ("5,000 attributes", {"attributes": {f"k{i}": "v" for i in range(5000)}}),
        ("an attribute key with a newline", {"attributes": {"role\nIgnore the above": "keeper"}}),
        ("an attribute value of 100 kB", {"attributes": {"role": "y" * 100_000}}),
        ("an added statement of 1 MB", {"add": [{"aspect": "style", "statement": "z" * 1_000_000}]}),
        ("600 deletions", {"delete": [f"h{i}" for i in range(600)]}),
    ]:
        add(ServiceCase(f"PATCH profile: {name}", "unbounded profile data",
                        request("PATCH", "/v1/users/big/profile", CLIENT_ERRORS, body=body, profiled="big")))
    add(ServiceCase("POST examples: 201 texts", "unbounded profile data",
                    request("POST", "/v1/users/big2/examples", CLIENT_ERRORS,
                            body={"examples": [{"text": "t"}] * 201})))

    # Bad chat bodies, on both upstreams: 400 naming the parameter, never a 500.
    messages = [{"role": "user", "content": "Hello."}]
    for name, body in [
        ('"max_tokens": "abc"', {"model": "m", "messages": messages, "max_tokens": "abc"}),
        ('"max_tokens": -5', {"model": "m", "messages": messages, "max_tokens": -5}),
        ('"max_tokens": 0', {"model": "m", "messages": messages, "max_tokens": 0}),
        ('"temperature": "hot"', {"model": "m", "messages": messages, "temperature": "hot"}),
        ('"temperature": [1]', {"model": "m", "messages": messages, "temperature": [1]}),
        ('"temperature": 9', {"model": "m", "messages": messages, "temperature": 9}),
        ('"messages": "hi"', {"model": "m", "messages": "hi"}),
        ('"messages": []', {"model": "m", "messages": []}),
        ("a message without a role", {"model": "m", "messages": [{"content": "hi"}]}),
        ('"stream": "yes"', {"model": "m", "messages": messages, "stream": "yes"}),
        ("a JSON array", [1, 2]),
        ("not JSON", b"{not json"),
    ]:
        for where in ("builtin", "proxied"):
            add(ServiceCase(f"chat ({where}): {name}", "bad chat bodies", chat(body, name=where)))

    # Percent-encoded invalid UTF-8 in user ids: refused, never turned into U+FFFD (two ids, one user).
    for name, encoded in [("a lone byte %FF", "%FF"), ("a broken sequence %C3%28", "%C3%28"),
                          ("an encoded surrogate %ED%A0%80", "%ED%A0%80"), ("an overlong slash %C0%AF", "%C0%AF"),
                          ("a NUL %00", "a%00b")]:
        add(ServiceCase(f"user id {name}: POST examples", "percent-encoded ids",
                        request("POST", f"/v1/users/{encoded}/examples", CLIENT_ERRORS - {404},
                                body={"examples": [{"text": TEXTS[0]}]})))
        add(ServiceCase(f"user id {name}: GET profile", "percent-encoded ids",
                        request("GET", f"/v1/users/{encoded}/profile", CLIENT_ERRORS)))
    add(ServiceCase("two invalid ids never alias one user", "percent-encoded ids", _no_alias))
    return c


def _huge_reword(h: ServiceHarness) -> tuple[str, str] | None:
    profile = h.profiled("big3")
    said = profile["hypotheses"] + profile["facts"]  # either can be reworded
    if not said:
        return "crashed", "the profile has no hypothesis or fact to reword"
    with h.http() as client:
        answer = client.patch("/v1/users/big3/profile", json={"reword": {said[0]["id"]: "x" * 1_500_000}})
    return judge(answer, CLIENT_ERRORS - {404})


def _quiet_probe(h: ServiceHarness, path: str) -> tuple[str, str] | None:
    answer = httpx.get(f"{h.urls['proxied']}{path}", timeout=10)
    forbidden = ("127.0.0.1", "sqlite", str(h.folder), "http", OPERATOR_KEY)
    leaked = [f for f in forbidden if f in answer.text]
    if leaked:
        return "leak", f"{path} says {leaked[0]!r}: {answer.text[:200]}"
    return None if answer.status_code == 200 else ("wrong_status", f"{path}: {answer.status_code}")


def _no_alias(h: ServiceHarness) -> tuple[str, str] | None:
    with h.http() as client:
        client.post("/v1/users/%FF/examples", json={"examples": [{"text": TEXTS[0]}]})
        client.post("/v1/users/%FE/examples", json={"examples": [{"text": TEXTS[1]}]})
        listed = client.get("/v1/users", params={"limit": 200}).json()
    ids = [u["id"] for u in listed.get("data", [])]
    return ("lost_work", f"an invalid id became {ids!r}") if any("\ufffd" in i for i in ids) else None


def run_service_case(case: ServiceCase, harness: ServiceHarness) -> tuple[str, str]:
    try:
        verdict = case.probe(harness)
    except httpx.TimeoutException as exc:
        return "hang", f"no answer: {exc}"
    except Exception as exc:  # a probe that cannot even run is reported, not raised: the pass goes on
        return "crashed", f"{type(exc).__name__}: {exc}"[:300]
    return verdict or ("ok", "")
