"""What a person deleted stays deleted: a user deleted while their job runs does not come back when it ends (on
SQLite and PostgreSQL), the deleted texts leave no trace in the SQLite files, a hypothesis the person deleted is
not re-inferred by the next update, the review page lists what the person deleted and restores it, and a review
link with a malformed signature is a plain 4xx."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import openai
import pytest

from hyperalign.llm import Completion, CompletionRequest
from hyperalign.llm.fake import FakeBackend
from service_support import EXAMPLE_TEXT, QUOTE, Service, all_rows, responder, start_service


class GatedBackend(FakeBackend):
    """The fake backend, except that while `gated` every call waits until the test opens the gate: a job the test
    holds inside its LLM work for as long as it needs, without sleeping."""

    def __init__(self) -> None:
        super().__init__(responder)
        self.gated = False
        self.entered, self.gate = threading.Event(), threading.Event()

    async def acomplete(self, request: CompletionRequest) -> Completion:
        if self.gated:
            self.entered.set()
            await asyncio.to_thread(self.gate.wait, 60)  # the bound only keeps a broken test from hanging
        return self.reply(request)


@pytest.fixture
def service(tmp_path):
    server, service = start_service(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    yield service
    server.__exit__()
    service.store.close()


def review_token(service: Service, user: str = "ann") -> str:
    with service.http() as http:
        answer = http.post(f"/v1/users/{user}/review-link")
    assert answer.status_code == 201
    return answer.json()["url"].rsplit("/", 1)[1]


def test_a_user_deleted_while_their_job_runs_stays_deleted(database_url):
    backend = GatedBackend()
    server, service = start_service(database_url, backend=backend)
    try:
        marker = "Quillwort-7391 wrote this."
        backend.gated = True
        with service.http() as http:
            http.post("/v1/users/ann/examples", json={"examples": [{"text": f"{EXAMPLE_TEXT} {marker}"}]})
            job = http.post("/v1/users/ann/jobs").json()
            assert backend.entered.wait(30), "the job never reached its LLM work"
            assert http.get(f"/v1/users/ann/jobs/{job['id']}").json()["status"] == "running"
            assert http.delete("/v1/users/ann").status_code == 204
        backend.gated = False
        backend.gate.set()  # the job's LLM work ends now, after the deletion
        # Jobs run one at a time: once a later job has finished, Ann's has ended too.
        later = service.infer("bob")
        assert later["status"] == "succeeded"
        with service.http() as http:
            assert http.get("/v1/users/ann/profile").status_code == 404
            assert http.get("/v1/users/ann/export").status_code == 404
            assert http.get(f"/v1/users/ann/jobs/{job['id']}").status_code == 404
        raw = openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.keys["acme"], max_retries=0) \
            .chat.completions.with_raw_response.create(
                model="m", user="ann", messages=[{"role": "user", "content": "Write a note."}])
        assert raw.headers["X-Hyperalign-Profile-Version"] == "none"
        dump = json.dumps({n: [list(map(str, r)) for r in rows] for n, rows in all_rows(service.store).items()})
        assert "Quillwort-7391" not in dump and ":ann" not in dump
        assert ":bob" in dump  # the other user's job saved as usual
    finally:
        backend.gate.set()
        server.__exit__()
        service.store.close()


def sqlite_files(database: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm"))
                    if p.exists())


def test_a_deleted_users_text_leaves_no_trace_in_the_sqlite_files(tmp_path):
    database = tmp_path / "service.sqlite3"
    server, service = start_service(f"sqlite:///{database}")
    try:
        marker = "Zyzzogeton-5150"
        service.infer("ann", f"{EXAMPLE_TEXT} The {marker} log.")
        service.infer("bob")
        with service.http() as http:
            added = http.patch("/v1/users/ann/profile", json={"add": [
                {"aspect": "writing_style", "statement": f"Mentions the {marker} often."}]}).json()
            mine = next(h["id"] for h in added["profile"]["hypotheses"] if marker in h["statement"])
            http.patch("/v1/users/ann/profile", json={"delete": [mine]}).raise_for_status()  # kept as a rejection
            assert marker.encode() in sqlite_files(database)  # the test can see the text where it lies
            assert http.delete("/v1/users/ann").status_code == 204
        assert marker.encode() not in sqlite_files(database)
        wal = Path(f"{database}-wal")
        assert not wal.exists() or wal.stat().st_size == 0  # checkpointed and truncated
        with service.http() as http:  # the other user is untouched
            assert http.get("/v1/users/bob/profile").status_code == 200
    finally:
        server.__exit__()
        service.store.close()


def test_a_hypothesis_or_fact_the_person_deleted_is_not_inferred_again(service):
    first = service.infer()
    with service.http() as http:
        profile = http.get("/v1/users/ann/profile").json()["profile"]
        inferred = next(h for h in profile["hypotheses"] if h["origin"] == "inferred")
        fact = profile["facts"][0]
        http.patch("/v1/users/ann/profile", json={"delete": [inferred["id"]]}).raise_for_status()
    token = review_token(service)
    with service.http(tenant="") as http:  # the fact, deleted on the review page
        http.post(f"/review/{token}", data={"action": "delete", "hypothesis": fact["id"]},
                  follow_redirects=True).raise_for_status()
    done = service.infer(text=f"Seals on the landing stage, nine of them. {QUOTE}")
    assert done["result_version"] == first["result_version"] + 3  # the update did save a version
    with service.http() as http:
        current = http.get("/v1/users/ann/profile").json()["profile"]
        exported = http.get("/v1/users/ann/export").json()
    ids = {h["id"] for h in current["hypotheses"]}
    statements = {" ".join(h["statement"].lower().split()) for h in current["hypotheses"]}
    assert inferred["id"] not in ids and " ".join(inferred["statement"].lower().split()) not in statements
    assert fact["id"] not in ids | {f["id"] for f in current["facts"]}
    assert current["facts"]  # the update measured the other facts again
    assert any(h["origin"] == "inferred" for h in current["hypotheses"])  # the update still inferred the rest
    rejected = {r["hypothesis"]["id"] for r in exported["rejected_hypotheses"]}
    assert rejected == {inferred["id"], fact["id"]}


def deleted_section(page: str) -> str:
    return page.split('id="deleted-h"', 1)[1].split("</section>", 1)[0]


def test_the_review_page_lists_what_the_person_deleted_and_restores_it(service):
    service.infer()
    with service.http() as http:
        target = next(h for h in http.get("/v1/users/ann/profile").json()["profile"]["hypotheses"]
                      if h["origin"] == "inferred")
    token = review_token(service)
    with service.http(tenant="") as http:
        http.post(f"/review/{token}", data={"action": "delete", "hypothesis": target["id"]},
                  follow_redirects=True).raise_for_status()
        page = http.get(f"/review/{token}").text
        deleted = deleted_section(page)
        assert target["statement"] in deleted and f'name="hypothesis" value="{target["id"]}"' in deleted
        assert 'value="restore"' in deleted and "<script" not in page
        restored = http.post(f"/review/{token}", data={"action": "restore", "hypothesis": target["id"]},
                             follow_redirects=True)
        assert restored.status_code == 200 and "Saved as version 3." in restored.text
        assert target["statement"] not in deleted_section(restored.text) and "Nothing deleted." in restored.text
    with service.http() as http:
        current = http.get("/v1/users/ann/profile").json()
        exported = http.get("/v1/users/ann/export").json()
    back = next(h for h in current["profile"]["hypotheses"] if h["id"] == target["id"])
    assert back["statement"] == target["statement"] and current["version"]["author"] == "ann (review page)"
    assert exported["rejected_hypotheses"] == []
    service.infer(text=f"Storm from the west. {QUOTE}")  # restored, it is the profile's again: updates keep it
    with service.http() as http:
        assert target["id"] in {h["id"] for h in http.get("/v1/users/ann/profile").json()["profile"]["hypotheses"]}


def test_a_voice_sample_the_person_deleted_stays_out_when_the_profile_is_inferred_again(service):
    """Inferred again from the same texts, the profile would choose the same sentence: the deletion must hold."""
    import html

    service.infer()
    with service.http() as http:
        samples = http.get("/v1/users/ann/profile").json()["profile"]["voice_samples"]
        assert samples
        sample = samples[0]
        http.patch("/v1/users/ann/profile", json={"delete": [sample["id"]]}).raise_for_status()
        job = http.post("/v1/users/ann/jobs", json={"full": True}).json()
    finished = service.wait_for_job("ann", job["id"])
    assert finished["status"] == "succeeded" and finished["kind"] == "reinfer"
    with service.http() as http:
        current = http.get("/v1/users/ann/profile").json()
        exported = http.get("/v1/users/ann/export").json()
    assert current["version"]["action"] == "infer"
    texts = [v["text"] for v in current["profile"]["voice_samples"]]
    assert sample["text"] not in texts and texts == [v["text"] for v in samples[1:]]
    assert [r["hypothesis"] for r in exported["rejected_hypotheses"]] == [sample]
    token = review_token(service)
    with service.http(tenant="") as http:
        deleted = deleted_section(http.get(f"/review/{token}").text)
        assert html.escape(sample["text"], quote=False) in deleted and "in your own words" in deleted
        restored = http.post(f"/review/{token}", data={"action": "restore", "hypothesis": sample["id"]},
                             follow_redirects=True)
        assert restored.status_code == 200 and "Nothing deleted." in restored.text
    with service.http() as http:
        assert sample in http.get("/v1/users/ann/profile").json()["profile"]["voice_samples"]


@pytest.mark.parametrize("signature", ["é" * 32, "\u2603", "0" * 31 + "\u00ff"])
def test_a_review_link_with_a_non_ascii_signature_is_a_plain_404(service, signature):
    service.infer()
    payload = review_token(service).split(".")[0]
    with service.http(tenant="") as http:
        for answer in (http.get(f"/review/{payload}.{signature}"),
                       http.post(f"/review/{payload}.{signature}", data={"action": "delete", "hypothesis": "x"})):
            assert answer.status_code == 404, answer.text
            assert "Traceback" not in answer.text
