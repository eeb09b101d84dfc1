"""The fetch client against local servers: compressed bodies capped after decoding, charsets, proxies guarded."""

from __future__ import annotations

import gzip

import brotli
import pytest
from aiohttp import web

from gleaner.services.worker.fetch import DNS_CACHE_S, FetchClient
from gleaner.shared.config import Config
from gleaner.shared.errors import PermanentError
from gleaner.shared.urlguard import Policy
from tests.integration.test_sites_support import PageServer
from tests.integration.test_ssrf_refused import StubResolver

MIB = 1024 * 1024
BOMB = gzip.compress(b"\0" * (10 * MIB), compresslevel=9)
TEXT = "Grüße aus Köln, schöne Straße"


async def compressed(request: web.Request) -> web.StreamResponse:
    if request.path == "/bomb":
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
    if request.path == "/br":
        body = brotli.compress(f"<p>{TEXT}</p>".encode())
        return web.Response(body=body, headers={"Content-Encoding": "br", "Content-Type": "text/html; charset=utf-8"})
    if request.path == "/latin1":
        return web.Response(body=TEXT.encode("cp1252"), headers={"Content-Type": "text/plain; charset=windows-1252"})
    return web.Response(
        text=request.headers.get("Accept-Encoding", ""), headers={"X-UA": request.headers["User-Agent"]}
    )


async def client_for(config: Config) -> FetchClient:
    client = FetchClient(config, policy=Policy(allow_private=True, allowed_ports=None))
    await client.start()
    return client


async def test_a_ten_kib_gzip_bomb_of_ten_mib_is_refused_at_the_size_cap() -> None:
    assert len(BOMB) < 11 * 1024
    client = await client_for(Config(fetch_max_bytes=MIB))
    try:
        async with PageServer(compressed) as server:
            with pytest.raises(PermanentError) as caught:
                await client.get(f"{server.url}/bomb")
            assert caught.value.error_class == "too_large"
            accepted = await client.get(f"{server.url}/echo")
    finally:
        await client.close()
    assert {part.strip() for part in accepted.text().split(",")} >= {"gzip", "deflate", "br"}


async def test_brotli_and_declared_charsets_are_decoded_and_the_user_agent_names_the_operator_url() -> None:
    client = await client_for(Config(fetch_contact_url="https://crawl.example.org/about"))
    try:
        async with PageServer(compressed) as server:
            br = await client.get(f"{server.url}/br")
            latin = await client.get(f"{server.url}/latin1")
            await client.get(f"{server.url}/echo")
            agent = server.hits[-1].user_agent
    finally:
        await client.close()
    assert br.text() == f"<p>{TEXT}</p>"
    assert latin.text() == TEXT
    assert agent == "Gleaner/0.1 (+https://crawl.example.org/about)"


async def test_dns_answers_are_cached_for_a_minute_at_most() -> None:
    client = await client_for(Config())
    try:
        assert client._session is not None
        connector = client._session.connector
        assert getattr(connector, "_use_dns_cache", False) and connector._cached_hosts._ttl == DNS_CACHE_S  # type: ignore[union-attr]
    finally:
        await client.close()
    assert DNS_CACHE_S <= 60


async def test_a_target_sent_through_a_proxy_still_passes_the_url_guard() -> None:
    """The proxy resolves the target, not our connector: the guard checks the target's addresses itself."""
    async with PageServer(compressed) as proxy:
        resolver = StubResolver({"evil.test": "127.0.0.1"})
        client = FetchClient(Config(), policy=Policy.configured(allow_private=False), resolver=resolver)
        await client.start()
        try:
            for target in ("http://127.0.0.1/", "http://evil.test/x"):
                with pytest.raises(PermanentError) as caught:
                    await client.get(target, proxy=proxy.url)
                assert caught.value.error_class == "ssrf_blocked"
        finally:
            await client.close()
    assert proxy.hits == []
