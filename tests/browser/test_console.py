"""The console's flows in Chromium: sign in, live job rows, tracebacks, dead letters, schedules, a read-only key,
hostile input, sign out. Each page visited is saved as a screenshot."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Console, sign_in

pytestmark = pytest.mark.e2e

PAGES = {
    "overview": "/console/",
    "jobs": "/console/jobs",
    "dead-letters": "/console/dead-letters",
    "schedules": "/console/schedules",
    "sites": "/console/sites",
    "queues": "/console/queues",
    "workers": "/console/workers",
    "kinds": "/console/kinds",
}


def shoot(page: Page, console: Console, name: str) -> None:
    page.screenshot(path=str(console.shots / f"{name}.png"), full_page=True)


def until(check: Callable[[], Any], what: str, timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def submit(console: Console, **job: Any) -> dict[str, Any]:
    response = console.api.post("/jobs", json=job)
    assert response.status_code == 202, response.text
    return dict(response.json())


def finished(console: Console, job_id: int) -> dict[str, Any]:
    return dict(console.api.get(f"/jobs/{job_id}", params={"wait": 30}).json())


def failed_job(console: Console, **payload: Any) -> int:
    job = submit(console, kind="fail", payload=payload, max_attempts=1)
    assert finished(console, job["id"])["state"] == "failed"
    return int(job["id"])


def test_signing_in_with_an_api_key_opens_every_page_behind_a_strict_session_cookie(
    console: Console, page: Page, context: BrowserContext
) -> None:
    response = page.goto(f"{console.url}/console/jobs")
    assert response is not None
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/jobs$"))
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    shoot(page, console, "sign-in")
    page.fill("#key", "not-a-key-of-this-gateway")
    page.click("#sign-in")
    expect(page.locator(".error")).to_contain_text("unknown or revoked")
    page.fill("#key", "test-admin-token-0123456789")
    page.click("#sign-in")
    expect(page).to_have_url(f"{console.url}/console/jobs")
    (cookie,) = [c for c in context.cookies() if c["name"] == "gleaner_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time()
    assert "test-admin-token" not in cookie["value"]  # sealed, not merely signed
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    for name, path in PAGES.items():
        response = page.goto(console.url + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        expect(page.locator("h1")).to_be_visible()
        shoot(page, console, name)
    assert refused == []  # nothing on any page needed what the policy forbids


def test_a_job_submitted_through_the_api_turns_succeeded_in_the_jobs_list_without_a_reload(
    console: Console, page: Page
) -> None:
    sign_in(page, console.url)
    page.goto(f"{console.url}/console/jobs")
    page.evaluate("window.notReloaded = true")
    job = submit(console, kind="sleep", payload={"seconds": 1})
    row = page.locator(f"#job-{job['id']}")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-state", "succeeded", timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    shoot(page, console, "jobs-live")


def test_a_failed_jobs_attempt_shows_its_traceback_and_a_script_in_its_payload_stays_text(
    console: Console, page: Page
) -> None:
    job_id = failed_job(console, note="<script>window.pwned = 1</script><b>bold</b>")
    sign_in(page, console.url)
    page.goto(f"{console.url}/console/jobs/{job_id}")
    expect(page.locator("#job-state")).to_have_text("failed")
    expect(page.locator("#attempt-1 .traceback")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("#attempt-1 .traceback")).to_contain_text("RetryableError")
    expect(page.locator("#payload")).to_contain_text("<script>window.pwned = 1</script>")
    assert page.evaluate("window.pwned") is None
    assert page.locator("#payload b").count() == 0
    shoot(page, console, "job-failed")


def test_a_requeued_dead_letter_runs_again_and_its_page_follows_it_to_succeeded(console: Console, page: Page) -> None:
    # fails its first attempt (its only one), succeeds when run again
    job_id = failed_job(console, times=1)
    sign_in(page, console.url)
    page.goto(f"{console.url}/console/dead-letters")
    expect(page.locator(f"#letter-job-{job_id}")).to_be_visible()
    shoot(page, console, "dead-letters")
    page.click(f"#requeue-job-{job_id}")
    expect(page).to_have_url(f"{console.url}/console/jobs/{job_id}?done=requeued")
    expect(page.locator("#notice")).to_contain_text("Requeued")
    expect(page.locator("#job-state")).to_have_text("succeeded", timeout=20_000)
    assert finished(console, job_id)["state"] == "succeeded"


def test_a_schedule_is_paused_and_resumed_from_the_schedules_page(console: Console, page: Page) -> None:
    created = console.api.post(
        "/schedules", json={"name": "browser-hourly", "interval_s": 3600, "job": {"kind": "noop"}}
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    sign_in(page, console.url)
    page.goto(f"{console.url}/console/schedules")
    page.click(f"#pause-{schedule_id}")
    expect(page.locator(f"#schedule-{schedule_id} .state-paused")).to_be_visible()
    assert console.api.get(f"/schedules/{schedule_id}").json()["paused"] is True
    shoot(page, console, "schedules-paused")
    page.click(f"#resume-{schedule_id}")
    expect(page.locator(f"#schedule-{schedule_id} .state-paused")).to_have_count(0)
    assert console.api.get(f"/schedules/{schedule_id}").json()["paused"] is False
    page.goto(f"{console.url}/console/schedules/{schedule_id}?count=3")
    expect(page.locator("#preview li")).to_have_count(3)
    shoot(page, console, "schedule")


def test_a_read_only_key_sees_no_action_controls_and_its_forged_posts_are_refused(console: Console, page: Page) -> None:
    job_id = failed_job(console)
    created = console.api.post("/schedules", json={"name": "browser-ro", "interval_s": 3600, "job": {"kind": "noop"}})
    schedule_id = created.json()["id"]
    sign_in(page, console.url, console.key("jobs:read"))
    for path in (f"/console/jobs/{job_id}", "/console/dead-letters", "/console/schedules", "/console/queues"):
        page.goto(console.url + path)
        expect(page.locator("main form:not([method=get]) button")).to_have_count(0)
        expect(page.locator("main form[method=post]")).to_have_count(0)
    shoot(page, console, "read-only-dead-letters")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    forged = {
        f"/console/jobs/{job_id}/retry": {},
        f"/console/dead-letters/job-{job_id}/requeue": {},
        f"/console/schedules/{schedule_id}/pause": {},
        "/console/dead-letters/requeue": {"kind": "fail"},
    }
    for path, form in forged.items():
        for token in ({}, {"csrf": csrf}):
            response = page.request.post(console.url + path, form=form | token, max_redirects=0)
            assert response.status == 403, (path, token, response.status)
    assert console.api.get(f"/jobs/{job_id}").json()["state"] == "failed"
    assert console.api.get(f"/schedules/{schedule_id}").json()["paused"] is False


def test_a_post_without_the_sessions_csrf_token_or_from_another_origin_is_refused(console: Console, page: Page) -> None:
    job_id = failed_job(console)
    sign_in(page, console.url)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    path = f"{console.url}/console/jobs/{job_id}/retry"
    assert page.request.post(path, form={}, max_redirects=0).status == 403
    assert page.request.post(path, form={"csrf": "x" + (csrf or "")}, max_redirects=0).status == 403
    other = page.request.post(path, form={"csrf": csrf or ""}, headers={"Origin": "https://evil.example"})
    assert other.status == 403
    assert console.api.get(f"/jobs/{job_id}").json()["state"] == "failed"


def test_bad_console_parameters_are_4xx_pages_never_500(console: Console, page: Page) -> None:
    sign_in(page, console.url)
    bad = [
        "/console/jobs?state=exploded",
        "/console/jobs?page_size=0",
        "/console/jobs?page_size=abc",
        "/console/jobs?created_after=yesterday",
        "/console/jobs?schedule_id=-1",
        "/console/jobs?payload=%7Bnot%20json",
        "/console/jobs?page_token=forged",
        "/console/jobs?kind=" + "k" * 500,
        "/console/jobs/999999999",
        "/console/jobs/99999999999999999999",
        "/console/dead-letters?limit=5000",
        "/console/dead-letters?resolved=maybe",
        "/console/schedules/999999999",
        "/console/schedules/1?count=1000",
        "/console/sites/no-such-site",
        "/console/sign-in?next=//evil.example/",
        "/console/sign-in?next=https://evil.example/",
        "/console/no-such-page",
    ]
    for path in bad:
        response = page.request.get(console.url + path, max_redirects=0)
        assert 400 <= response.status < 500, (path, response.status)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    site = console.api.put("/sites/browser-site", json={"requests_per_hour": 60})
    assert site.status_code in (200, 201)
    posts = [
        ("/console/sites/browser-site/edit", {"definition": "{not json"}),
        ("/console/sites/browser-site/edit", {"definition": "[1, 2]"}),
        ("/console/sites/browser-site/edit", {"definition": '{"burst": -5}'}),
        ("/console/dead-letters/requeue", {"limit": "lots"}),
        ("/console/dead-letters/job-1/resolve", {"note": "n" * 5000}),
        ("/console/queues/no-such-queue/pause", {}),
        ("/console/sign-in", {"key": "k" * 600}),
    ]
    for path, form in posts:
        response = page.request.post(console.url + path, form=form | {"csrf": csrf}, max_redirects=0)
        assert 400 <= response.status < 500, (path, response.status)
    page.goto(f"{console.url}/console/jobs?state=exploded")
    expect(page.locator(".error")).to_contain_text("state")


def test_signing_out_or_revoking_the_key_ends_the_session(console: Console, page: Page) -> None:
    name = "browser-revoked"
    key = console.key("jobs:read", name)
    sign_in(page, console.url, key)
    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.goto(f"{console.url}/console/jobs")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    sign_in(page, console.url, key)
    key_id = next(k["id"] for k in console.api.get("/api-keys").json()["api_keys"] if k["name"] == name)
    assert console.api.post(f"/api-keys/{key_id}/revoke").status_code == 200
    until(
        lambda: page.goto(f"{console.url}/console/jobs") and "sign-in" in page.url, "the revoked key's session to end"
    )


def test_an_admin_edits_a_site_and_a_schedule_triggers_it_and_resolves_and_bulk_requeues_dead_letters(
    console: Console, page: Page
) -> None:
    assert console.api.put("/sites/browser-edit", json={"requests_per_hour": 60}).status_code in (200, 201)
    created = console.api.post("/schedules", json={"name": "browser-edit", "interval_s": 3600, "job": {"kind": "noop"}})
    schedule_id = created.json()["id"]
    resolved, requeued = failed_job(console, tag="resolve-me"), failed_job(console, times=1)
    sign_in(page, console.url)
    page.goto(f"{console.url}/console/sites/browser-edit")
    page.fill("textarea[name=definition]", '{"requests_per_hour": 120, "burst": 3}')
    page.click("#save")
    expect(page).to_have_url(f"{console.url}/console/sites/browser-edit?done=saved")
    site = console.api.get("/sites/browser-edit").json()
    assert (site["requests_per_hour"], site["burst"]) == (120, 3)
    page.goto(f"{console.url}/console/schedules/{schedule_id}")
    page.fill("textarea[name=definition]", '{"interval_s": 7200}')
    page.click("#save")
    assert console.api.get(f"/schedules/{schedule_id}").json()["interval_s"] == 7200
    page.click("#trigger")
    expect(page).to_have_url(re.compile(r"/console/jobs/[0-9]+\?done=triggered$"))
    expect(page.locator("#job-state")).to_have_text("succeeded", timeout=20_000)
    page.goto(f"{console.url}/console/dead-letters")
    page.locator(f"#letter-job-{resolved} input[name=note]").fill("retired <b>site</b>")
    page.locator(f"#letter-job-{resolved} form[action$=resolve] button").click()
    expect(page.locator(f"#letter-job-{resolved}")).to_have_count(0)
    letters = console.api.get("/dead-letters", params={"resolved": "true"}).json()["dead_letters"]
    assert {"id": f"job-{resolved}", "resolution": "retired <b>site</b>"}.items() <= next(
        letter for letter in letters if letter["id"] == f"job-{resolved}"
    ).items()
    page.fill("#bulk-requeue input[name=kind]", "fail")
    page.fill("#bulk-requeue input[name=error_class]", "fail_retryable")
    page.click("#bulk-requeue button")
    expect(page.locator("#notice")).to_have_text(re.compile(r"Requeued [1-9][0-9]* failed jobs\."))
    assert finished(console, requeued)["state"] == "succeeded"
    assert console.api.get(f"/jobs/{resolved}").json()["state"] == "failed"  # resolved: not requeued


def test_the_overview_charts_the_last_hours_outcomes_and_names_the_workers_and_leader(
    console: Console, page: Page
) -> None:
    job = submit(console, kind="noop", payload={})
    assert finished(console, job["id"])["state"] == "succeeded"
    sign_in(page, console.url)
    expect(page.locator(".chart rect.bar-succeeded").first).to_be_visible()
    expect(page.locator("#workers-alive")).to_have_text("1")
    expect(page.locator("#leader")).not_to_have_text("none", timeout=20_000)
    shoot(page, console, "overview-busy")


def test_the_console_relays_the_event_stream_to_a_signed_in_browser_and_refuses_others(
    console: Console, page: Page, context: BrowserContext
) -> None:
    assert context.request.get(f"{console.url}/console/events", max_redirects=0).status == 303
    sign_in(page, console.url, console.key("jobs:read"))
    page.evaluate(
        """() => {
          window.seen = [];
          const source = new EventSource("/console/events?type=job.succeeded&kind=noop");
          source.addEventListener("job.succeeded", (event) => window.seen.push(JSON.parse(event.data)));
          return new Promise((resolve) => { source.onopen = resolve; });
        }"""
    )
    job = submit(console, kind="noop", payload={})
    # (wait_for_function evaluates a string: the console's policy forbids that)
    until(lambda: page.evaluate(f"window.seen.some((event) => event.job_id === {job['id']})"), "the job's event")
    assert {event["type"] for event in page.evaluate("window.seen")} == {"job.succeeded"}
    bad = context.request.get(f"{console.url}/console/events?colour=blue", max_redirects=0)
    assert bad.status == 422
