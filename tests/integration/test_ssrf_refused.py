"""SSRF: hostile URLs fail with `ssrf_blocked` and a canary server on loopback never hears from them."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from gleaner.services.worker.fetch import FetchClient
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.errors import PermanentError
from gleaner.shared.urlguard import Policy
from tests.integration.test_sites_support import PageServer, pages
from tests.integration.test_worker_lifecycle import submit, wait_final
from tests.support.stack import Stack


def hostile_urls(port: int) -> list[str]:
    """Loopback, private and metadata spellings aimed at the canary's port (or the default port 80)."""
    spellings = [
        "127.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "017700000001",
        "127.1",
        "0x7f.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "0.0.0.0",
        "localhost",
        "10.0.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "[fe80::1]",
        "[2002:7f00:1::]",
    ]
    with_port = [f"http://{host}:{port}/canary" for host in spellings]
    default_port = [f"http://{host}/canary" for host in spellings[:8]]
    other = [
        f"file:///etc/passwd#{port}",
        f"gopher://127.0.0.1:{port}/_GET%20/canary",
        f"ftp://127.0.0.1:{port}/",
        f"http://user:pw@127.0.0.1:{port}/",
        "http://169.254.169.254/latest/meta-data/",
    ]
    names = [f"http://{name}:{port}/canary" for name in _names_resolving_to_loopback()]
    return with_port + default_port + other + names


def _names_resolving_to_loopback() -> list[str]:
    """This machine's own names that resolve to a loopback address (from /etc/hosts), if any."""
    out = []
    for name in {socket.gethostname(), "ip6-localhost"}:
        try:
            infos = socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        if any(info[4][0].startswith(("127.", "::1")) for info in infos):
            out.append(name)
    return out


@pytest.fixture
async def canary() -> AsyncIterator[PageServer]:
    """On port 80 when this process may bind it (URLs without a port aim there), else any port."""
    try:
        async with PageServer(pages, port=80) as server:
            yield server
            return
    except OSError:
        pass
    async with PageServer(pages) as server:
        yield server


async def test_hostile_urls_fail_the_job_as_ssrf_blocked_and_the_canary_hears_nothing(
    stack: Stack, db: asyncpg.Pool, broker: Broker, canary: PageServer
) -> None:
    await stack.start("worker", GLEANER_FETCH_ALLOW_PRIVATE="0")
    urls = hostile_urls(canary.port)
    assert len(urls) >= 30
    ids = []
    for url in urls:
        ids += await submit(db, broker, 1, "http.fetch", {"url": url})
    jobs = await wait_final(db, ids, timeout_s=20)
    by_url = {r["payload"]["url"]: (r["state"], r["error"]["class"] if r["error"] else None) for r in jobs.values()}
    assert {url: v for url, v in by_url.items() if v != ("failed", "ssrf_blocked")} == {}
    assert canary.hits == []


class StubResolver(AbstractResolver):
    """Names → one address each, as a hostile DNS server would answer."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.names:
            raise OSError(f"unknown name {host}")
        return [ResolveResult(hostname=host, host=self.names[host], port=port, family=socket.AF_INET, proto=0, flags=0)]

    async def close(self) -> None:
        return None


async def redirect(request: web.Request) -> web.StreamResponse:
    if request.path == "/to":
        # the header as given (web.HTTPFound would refuse to build some of the hostile ones)
        return web.Response(status=302, headers={"Location": request.query["u"]})
    return await pages(request)


async def test_redirects_and_names_that_lead_to_loopback_are_refused_before_connecting(canary: PageServer) -> None:
    # 127.0.0.2 plays a public site (trusted); everything else private stays refused
    policy = Policy(allow_private=False, allowed_ports=None, trusted_addresses=frozenset({"127.0.0.2"}))
    resolver = StubResolver({"public.test": "127.0.0.2", "evil.test": "127.0.0.1", "meta.test": "169.254.169.254"})
    client = FetchClient(Config(), policy=policy, resolver=resolver)
    await client.start()
    try:
        async with PageServer(redirect, host="127.0.0.2") as public:
            ok = await client.get(f"http://public.test:{public.port}/ok/1")
            assert ok.status == 200
            targets = [
                f"http://127.0.0.1:{canary.port}/canary",
                f"http://evil.test:{canary.port}/canary",
                f"http://[::ffff:127.0.0.1]:{canary.port}/canary",
                f"http://2130706433:{canary.port}/canary",
                f"http://meta.test:{canary.port}/",
                f"gopher://127.0.0.1:{canary.port}/",
            ]
            hops = [f"http://public.test:{public.port}/to?u={t}" for t in targets]
            for url in [*hops, *targets[1:2], *targets[4:5]]:
                with pytest.raises(PermanentError) as caught:
                    await client.get(url)
                assert caught.value.error_class == "ssrf_blocked", url
    finally:
        await client.close()
    assert canary.hits == []


async def test_a_redirect_to_a_location_with_a_backslash_is_a_refused_redirect_of_that_page() -> None:
    """Before, yarl's ValueError escaped as an unknown error: the whole job was retried for one page."""
    policy = Policy(allow_private=False, allowed_ports=None, trusted_addresses=frozenset({"127.0.0.2"}))
    client = FetchClient(Config(), policy=policy, resolver=StubResolver({"public.test": "127.0.0.2"}))
    await client.start()
    try:
        async with PageServer(redirect, host="127.0.0.2") as public:
            for location in ("http://evil.test\\@public.test/", "https://a\\b/"):
                with pytest.raises(PermanentError) as caught:
                    await client.get(f"http://public.test:{public.port}/to?u={quote(location)}")
                assert caught.value.error_class == "bad_redirect"
            ok = await client.get(f"http://public.test:{public.port}/to?u={quote('/ok/2')}")
            assert ok.status == 200
    finally:
        await client.close()
