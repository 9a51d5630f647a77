"""Review links and the review page's honesty, over real HTTP (and Chromium for the phone layout): the link is built
on the configured public URL, never the Host header; it expires and can be revoked; it does not carry the user id;
the page fits a 390-px phone; "supported" is said only of hypotheses with a quote found in the person's texts, and a
quote a person adds that stands word for word in their texts is marked verified."""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy import update

from hyperalign.service.state import ServiceConfig
from hyperalign.service.tables import review_links
from service_support import QUOTE, start_service
from test_service_review import chromium

SECRET_ID = "ann.secret@example.com"
EXAMPLES = [{"text": f"Fog again. The lamp turned 412 times. {QUOTE}"}, {"text": f"Storm from the west. {QUOTE}"}]


def started(tmp_path, **config):
    server, service = start_service(f"sqlite:///{tmp_path / 's.sqlite3'}",
                                    config=ServiceConfig(job_poll_seconds=0.05, **config))
    with service.http() as http:
        http.post(f"/v1/users/{SECRET_ID}/examples", json={"examples": EXAMPLES}).raise_for_status()
        job = http.post(f"/v1/users/{SECRET_ID}/jobs").json()
    assert service.wait_for_job(SECRET_ID, job["id"])["status"] == "succeeded"
    return server, service


@pytest.fixture
def service(tmp_path):
    server, service = started(tmp_path)
    yield service
    server.__exit__()
    service.store.close()


def link(service, **headers) -> dict:
    with service.http(**headers) as http:
        answer = http.post(f"/v1/users/{SECRET_ID}/review-link")
    assert answer.status_code == 201, answer.text
    return answer.json()


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_the_link_is_built_on_the_public_url_whatever_the_host_header(tmp_path):
    server, service = started(tmp_path, public_url="https://profiles.example.com/hyper")
    try:
        url = link(service, Host="evil.example")["url"]
        assert url.startswith("https://profiles.example.com/hyper/review/") and "evil" not in url
        with service.http(tenant="") as http:  # the token opens the page on this server
            assert http.get(f"/review/{token_of(url)}").status_code == 200
            # the page's own forms come from the public origin; the address it was reached on is not that
            refused = http.post(f"/review/{token_of(url)}", data={"action": "pin", "hypothesis": "x"},
                                headers={"Origin": service.url})
            assert refused.status_code == 404
    finally:
        server.__exit__()
        service.store.close()


def test_without_a_public_url_the_link_names_the_servers_own_address_not_the_host_header(service):
    url = link(service, Host="evil.example")["url"]
    assert url.startswith(f"{service.url}/review/") and "evil" not in url


def test_a_public_url_with_credentials_or_a_query_is_refused():
    for bad in ("https://user:pw@profiles.example.com", "https://profiles.example.com/?x=1", "ftp://profiles.example",
                "https://profiles.example.com/\r\nX: y"):
        with pytest.raises(ValueError, match="public URL"):
            ServiceConfig(public_url=bad)


def test_the_user_id_cannot_be_read_from_the_link(service):
    url = link(service)["url"]
    token = token_of(url)
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert "ann" not in url and b"ann" not in decoded and b"secret" not in decoded
    with service.http(tenant="") as http:
        assert SECRET_ID in http.get(f"/review/{token}").text  # yet it opens that person's page


def test_a_link_expires_after_the_configured_days(tmp_path):
    server, service = started(tmp_path, review_link_days=2)
    try:
        answer = link(service)
        assert abs(answer["expires_at"] - (time.time() + 2 * 86400)) < 3600
        with service.http(tenant="") as http:
            assert http.get(f"/review/{token_of(answer['url'])}").status_code == 200
            with service.store.transaction(write=True) as connection:  # two days pass
                connection.execute(update(review_links).values(expires_at=review_links.c.created_at))
            assert http.get(f"/review/{token_of(answer['url'])}").status_code == 404
    finally:
        server.__exit__()
        service.store.close()


def test_revoking_stops_every_outstanding_link_of_the_user_at_once(service):
    old = [token_of(link(service)["url"]) for _ in range(2)]
    with service.http("other") as http:  # another tenant cannot revoke (or learn of) this user
        assert http.delete(f"/v1/users/{SECRET_ID}/review-links").status_code == 404
    with service.http() as http:
        assert http.delete(f"/v1/users/{SECRET_ID}/review-links").status_code == 204
    new = token_of(link(service)["url"])
    with service.http(tenant="") as http:
        assert [http.get(f"/review/{t}").status_code for t in old] == [404, 404]
        assert http.post(f"/review/{old[0]}", data={"action": "pin", "hypothesis": "x"}).status_code == 404
        assert http.get(f"/review/{new}").status_code == 200
    with service.http() as http:  # deleting the user deletes their links
        assert http.delete(f"/v1/users/{SECRET_ID}").status_code == 204
    with service.http(tenant="") as http:
        assert http.get(f"/review/{new}").status_code == 404


def test_supported_is_said_only_with_a_quote_found_in_the_texts(service):
    with service.http() as http:
        edited = http.patch(f"/v1/users/{SECRET_ID}/profile", json={"add": [
            {"aspect": "writing_style", "statement": "Counts the lamp's turns."},
            {"aspect": "writing_style", "statement": "Quotes the logbook.", "quotes": ["The lamp turned 412 times."]},
            {"aspect": "writing_style", "statement": "Mentions whales.", "quotes": ["Whales sang all night."]},
        ]}).json()["profile"]["hypotheses"]
    mine = {h["statement"]: h for h in edited if h["origin"] == "person"}
    quoted = mine["Quotes the logbook."]
    assert quoted["evidence"][0]["verified"] is True and quoted["evidence"][0]["example_index"] == 0  # word for word
    assert mine["Mentions whales."]["evidence"][0]["verified"] is False
    with service.http(tenant="") as http:
        page = http.get(f"/review/{token_of(link(service)['url'])}").text
    articles = {h["statement"]: page.split(f'id="h-{h["id"]}"', 1)[1].split("</article>", 1)[0] for h in mine.values()}
    assert "no quotes" in articles["Counts the lamp's turns."] and "supported" not in articles["Counts the lamp's turns."]
    assert "supported by a quote from your texts" in articles["Quotes the logbook."]
    assert "not found in your texts" in articles["Mentions whales."] and "supported" not in articles["Mentions whales."]


def test_a_quote_added_on_the_review_page_is_checked_against_the_texts(service):
    token = token_of(link(service)["url"])
    with service.http(tenant="") as http:
        http.post(f"/review/{token}", data={"action": "add", "aspect": "writing_style", "statement": "Reports storms.",
                                            "quote": "Storm from the west."}, follow_redirects=True).raise_for_status()
    with service.http() as http:
        hypotheses = http.get(f"/v1/users/{SECRET_ID}/profile").json()["profile"]["hypotheses"]
    added = next(h for h in hypotheses if h["statement"] == "Reports storms.")
    assert added["origin"] == "person" and added["evidence"][0]["verified"] and added["evidence"][0]["example_index"] == 1


def test_the_page_fits_a_390_px_phone(service):
    from playwright.sync_api import sync_playwright

    long_word = "Supercalifragilisticexpialidocious" * 4
    with service.http() as http:
        http.post(f"/v1/users/{SECRET_ID}/examples", json={"examples": [
            {"text": f"{long_word} https://example.com/{'a' * 120} {QUOTE}"}]}).raise_for_status()
        for n in range(3):  # a version history with long entries
            answer = http.patch(f"/v1/users/{SECRET_ID}/profile", json={
                "add": [{"aspect": "writing_style", "statement": f"{long_word} {n}", "quotes": [long_word]}],
                "message": f"{long_word} edit {n}"})
            assert answer.status_code == 200, answer.text
    url = link(service)["url"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(url)
        assert page.get_by_text("Your writing profile").first.is_visible()
        width = page.evaluate("document.scrollingElement.scrollWidth")
        browser.close()
    assert width <= 390, width


def test_the_page_shows_what_verification_dropped_and_why(service):
    """A reader sees the hypotheses that did not tell their texts from a typical answer, with the count of
    comparisons, apart from the ones the profile keeps (and no button acts on them)."""
    from hyperalign.profiles.model import Discrimination, Hypothesis
    from hyperalign.profiles.store import Action

    [summary] = service.store.list_profiles()
    stored = service.store.get(summary.user_id)
    dropped = Hypothesis(aspect="writing_style", statement="Writes in a clear and friendly tone.",
                         discrimination=Discrimination(person=1, contrast=2, undecided=1, leans=[0.4, -0.5, -0.3]))
    report = stored.profile.report.model_copy(update={"failed_verification": [dropped]})
    service.store.save(stored.profile.model_copy(update={"report": report}), expected_version=stored.version,
                       author="test", action=Action.INFER)
    with service.http(tenant="") as http:
        page = http.get(f"/review/{token_of(link(service)['url'])}").text
    section = page.split('<details id="dropped">', 1)[1].split("</details>", 1)[0]
    assert "Writes in a clear and friendly tone." in section
    assert "pointed to your text in 1 of 4 comparisons" in section and "<button" not in section
    assert 'id="h-' + dropped.id not in page  # not listed among the kept hypotheses
