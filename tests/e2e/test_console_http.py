"""The console over plain HTTP: every page's parameters swept with hostile values (a 4xx or a page, never a 5xx,
and nothing reflected unescaped), forged or foreign cookies, and the headers every console answer carries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.contract import checked_session
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Api, Service, Stack

pytestmark = pytest.mark.e2e

PAGES = {
    "/console/": (),
    "/console/jobs": (
        "state",
        "kind",
        "queue",
        "site",
        "schedule_id",
        "created_after",
        "created_before",
        "updated_after",
        "payload",
        "page_size",
        "page_token",
        "payload.url",
    ),
    "/console/live/jobs": ("state", "kind", "page_size", "page_token"),
    "/console/dead-letters": ("kind", "queue", "type", "limit", "resolved"),
    "/console/schedules": ("after_id",),
    "/console/sites": (),
    "/console/queues": (),
    "/console/workers": (),
    "/console/kinds": (),
    "/console/sign-in": ("next",),
}
HOSTILE = [
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "-1",
    "0",
    "1e309",
    "99999999999999999999999",
    "x" * 5000,
    "%00",
    "\u202e\U0001f4a5",
    '{"a": {"b": [1, 2, {"c": null}]}}',
    "2030-13-45T99:99:99Z",
    "true",
    "../../etc/passwd",
]


@pytest.fixture
async def gateway(stack: Stack) -> Service:
    return await stack.start("gateway")


@pytest.fixture
async def session(gateway: Service) -> AsyncIterator[aiohttp.ClientSession]:
    jar = aiohttp.CookieJar(unsafe=True)  # the gateway is at 127.0.0.1
    async with checked_session(cookie_jar=jar) as client:
        form = {"key": ADMIN_TOKEN, "next": "/console/"}
        async with client.post(f"{gateway.url}/console/sign-in", data=form, allow_redirects=False) as response:
            assert response.status == 303
        yield client


async def test_every_console_parameter_answers_hostile_values_with_a_page_or_a_4xx_and_escapes_them(
    gateway: Service, session: aiohttp.ClientSession
) -> None:
    seen: dict[int, int] = {}
    for path, names in PAGES.items():
        for name in names:
            for value in HOSTILE:
                async with session.get(gateway.url + path, params={name: value}, allow_redirects=False) as response:
                    body = await response.text()
                seen[response.status] = seen.get(response.status, 0) + 1
                assert response.status < 500, (path, name, value[:40], response.status, body[:300])
                assert "<script>alert(1)</script>" not in body, (path, name)
    assert seen.get(200, 0) > 0 and seen.get(422, 0) > 0, seen


async def test_a_forged_foreign_or_oversized_cookie_leads_to_the_sign_in_page(gateway: Service) -> None:
    for cookie in ("forged", "gAAAAABnot-a-token", "x" * 5000, '"quoted"', ""):
        headers = {"Cookie": f"gleaner_console={cookie}"}
        async with (
            checked_session() as client,
            client.get(f"{gateway.url}/console/jobs", headers=headers, allow_redirects=False) as response,
        ):
            assert response.status == 303, cookie[:20]
            assert response.headers["Location"].startswith("/console/sign-in?next=")


async def test_console_answers_forbid_framing_inline_script_and_caching(
    gateway: Service, session: aiohttp.ClientSession, api_factory: type[Api]
) -> None:
    for path in ("/console/sign-in", "/console/", "/console/static/console.js", "/console/no-such-page"):
        async with session.get(gateway.url + path, allow_redirects=False) as response:
            policy = response.headers["Content-Security-Policy"]
            assert re.search(r"script-src 'self'(;|$)", policy) and "frame-ancestors 'none'" in policy, path
            assert response.headers["X-Frame-Options"] == "DENY", path
    async with session.get(f"{gateway.url}/console/") as response:
        assert response.headers["Cache-Control"] == "no-store"
    for path in ("/", "/ui", "/console"):
        async with session.get(gateway.url + path, allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (303, "/console/"), path


async def test_the_session_cookie_is_secure_when_the_browser_came_over_https(gateway: Service) -> None:
    form = {"key": ADMIN_TOKEN, "next": "/console/"}
    for proto, secure in (("https", True), ("http", False)):
        async with (
            checked_session() as client,
            client.post(
                f"{gateway.url}/console/sign-in",
                data=form,
                headers={"X-Forwarded-Proto": proto},
                allow_redirects=False,
            ) as response,
        ):
            cookie = response.headers["Set-Cookie"]
            assert response.status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert ("Secure" in cookie) is secure, cookie


async def test_the_job_page_links_a_job_to_what_it_waits_for(
    gateway: Service, session: aiohttp.ClientSession, api_factory: type[Api]
) -> None:
    api = api_factory(gateway.url)
    first = await api.submit(kind="noop", delay_s=3600)
    status, second = await api.request("POST", "/jobs", json={"kind": "noop", "depends_on": [first["id"]]})
    assert status == 202
    async with session.get(f"{gateway.url}/console/jobs/{second['id']}") as response:
        page = await response.text()
    assert response.status == 200
    workflow = page.split('id="workflow"')[1].split("</section>")[0]
    assert f'<a href="/console/jobs/{first["id"]}">{first["id"]}</a>' in workflow
    assert "waits for (1 not ended)" in workflow
    async with session.get(f"{gateway.url}/console/jobs/{first['id']}") as response:
        assert 'id="workflow"' not in await response.text()
