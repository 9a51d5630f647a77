"""The review page in a real browser (Debian's Chromium driven by Playwright, nothing downloaded): a person opens
their review link, sees each hypothesis with its evidence marked in their texts, rewords one with the keyboard
only, and sees the new version in the history. Plus what the link refuses, over plain HTTP."""

from __future__ import annotations

import os
import shutil

import pytest

from service_support import QUOTE, start_service

EXAMPLES = [{"text": f"Fog again. The lamp turned 412 times. {QUOTE}"}, {"text": f"Storm from the west. {QUOTE}"}]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI_REQUIRE_BROWSER") == "required":
            pytest.fail("Chromium not found, and CI_REQUIRE_BROWSER=required")
        pytest.skip("Chromium not found (apt-get install chromium)")
    return found


@pytest.fixture
def service(tmp_path):
    server, service = start_service(f"sqlite:///{tmp_path / 's.sqlite3'}")
    with service.http() as http:
        http.post("/v1/users/ann/examples", json={"examples": EXAMPLES}).raise_for_status()
        job = http.post("/v1/users/ann/jobs").json()
    assert service.wait_for_job("ann", job["id"])["status"] == "succeeded"
    yield service
    server.__exit__()
    service.store.close()


def review_link(service) -> str:
    with service.http() as http:
        answer = http.post("/v1/users/ann/review-link")
    assert answer.status_code == 201
    return answer.json()["url"]


@pytest.mark.browser
def test_a_person_rewords_a_hypothesis_with_the_keyboard_and_sees_the_new_version(service):
    from playwright.sync_api import expect, sync_playwright

    url = review_link(service)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.goto(url)
        expect(page.get_by_role("heading", name="Your writing profile")).to_be_visible()
        article = page.locator("article.hyp").filter(has_text="Ends notes with a fixed motto").first
        expect(article).to_contain_text("supported by a quote from your texts")
        expect(page.locator("pre.text mark").first).to_have_text(QUOTE)  # the evidence, marked in the text
        hypothesis_id = (article.get_attribute("id") or "").removeprefix("h-")
        field = page.get_by_label(f"New wording for {hypothesis_id}")
        field.focus()
        page.keyboard.press("Control+A")
        page.keyboard.type("Closes every note with the same motto.")
        page.keyboard.press("Enter")  # submits the form: no mouse needed
        expect(page.get_by_role("status")).to_have_text("Saved as version 2.")
        expect(page.get_by_text("Closes every note with the same motto.").first).to_be_visible()
        expect(page.locator("table tbody tr").first).to_contain_text("ann (review page)")
        page.get_by_role("link", name="1", exact=True).click()
        expect(page.get_by_text("showing version 1 of 2")).to_be_visible()
        browser.close()
    [summary] = service.store.list_profiles()
    stored = service.store.get(summary.user_id)
    assert stored.version == 2 and stored.info.author == "ann (review page)"
    assert any(h.statement == "Closes every note with the same motto." and h.origin == "person"
               for h in stored.profile.hypotheses)


def test_a_tampered_or_foreign_review_link_shows_nothing(service):
    url = review_link(service)
    token = url.rsplit("/", 1)[1]
    with service.http(tenant="") as http:
        assert http.get(f"/review/{token}").status_code == 200
        assert "Ends notes with a fixed motto" in http.get(f"/review/{token}").text
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert http.get(f"/review/{forged}").status_code == 404
        assert http.post(f"/review/{forged}", data={"action": "delete", "hypothesis": "x"}).status_code == 404
        assert http.get("/review/not-a-token").status_code == 404
    with service.http("other") as http:  # another tenant cannot ask for a link to this user
        assert http.post("/v1/users/ann/review-link").status_code == 404


def test_profile_text_is_escaped_on_the_page(service):
    with service.http() as http:
        http.patch("/v1/users/ann/profile", json={"add": [{"aspect": "writing_style",
                                                          "statement": "<script>alert(1)</script> bold"}]})
        page = http.get(f"/review/{review_link(service).rsplit('/', 1)[1]}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; bold" in page


def test_a_statement_most_of_the_tenants_profiles_share_is_shown_as_generic(service):
    """The review page shows each hypothesis's share of the tenant's profiles (a statistic, no other user's text);
    another tenant's profiles do not count. In service_support every user gets the same statements."""
    with service.http() as http:
        for user in ("bo", "cy", "di", "ed"):
            http.post(f"/v1/users/{user}/examples", json={"examples": EXAMPLES}).raise_for_status()
            job = http.post(f"/v1/users/{user}/jobs").json()
            assert service.wait_for_job(user, job["id"])["status"] == "succeeded"
        page = http.get(f"/review/{review_link(service).rsplit('/', 1)[1]}").text
    assert "shared by 100% of profiles (generic: says little about you)" in page
    with service.http("other") as http:
        http.post("/v1/users/ann/examples", json={"examples": EXAMPLES}).raise_for_status()
        job = http.post("/v1/users/ann/jobs").json()
        assert service.wait_for_job("ann", job["id"], "other")["status"] == "succeeded"
        link = http.post("/v1/users/ann/review-link").json()["url"]
        page = http.get(f"/review/{link.rsplit('/', 1)[1]}").text
    assert "shared by 100% of profiles" in page and "(generic" not in page  # alone in its tenant: not generic


def test_the_page_guards_its_link_frames_referrers_caches_foreign_posts_and_notices(service):
    token = review_link(service).rsplit("/", 1)[1]
    with service.http(tenant="") as http:
        page = http.get(f"/review/{token}")
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
        forged = http.get(f"/review/{token}", params={"notice": "Your account is locked: call 555-0100"}).text
        assert "555-0100" not in forged  # a notice this server did not sign is not shown
        key = service.store.list_profiles()[0].user_id  # ann's tenant-scoped key
        before = service.store.current_version(key)
        ids = [h.id for h in service.store.get(key).profile.hypotheses]
        foreign = http.post(f"/review/{token}", data={"action": "delete", "hypothesis": ids[0]},
                            headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 404 and service.store.current_version(key) == before == 1
        own = http.post(f"/review/{token}", data={"action": "pin", "hypothesis": ids[0]},
                        headers={"Origin": service.url}, follow_redirects=True)
        assert own.status_code == 200 and "Saved as version 2." in own.text
        assert service.store.current_version(key) == 2
