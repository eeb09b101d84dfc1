"""The HTTP client handed to handlers: SSRF-guarded, size- and time-capped, redirects re-checked."""

from __future__ import annotations

import codecs
import hashlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from gleaner.shared.config import Config
from gleaner.shared.errors import PermanentError, RetryableError
from gleaner.shared.urlguard import BlockedURL, Policy, check_address, check_url

MAX_REDIRECTS = 5
# what a webhook receiver may answer: read (so the connection is reused) and kept in the job result, no more
MAX_POST_ANSWER_BYTES = 64 * 1024
USER_AGENT = "Gleaner/0.1"
# a resolved name is reused this long at most (the system resolver tells no TTL; before, it was kept forever)
DNS_CACHE_S = 60
# aiohttp decodes these; the size cap counts the decoded bytes, so a small bomb is refused at the cap
ACCEPT_ENCODING = "gzip, deflate, br"
# statuses where the server asks us to slow down; Retry-After says for how long
BUSY_STATUSES = (429, 503)


def user_agent(contact_url: str) -> str:
    """The default User-Agent: Gleaner and the operator's contact URL (GLEANER_FETCH_CONTACT_URL)."""
    return f"{USER_AGENT} (+{contact_url})" if contact_url else USER_AGENT


class ServerBusy(RetryableError):
    """A 429 or 503: the site asked to be left alone, for `retry_after_s` when it said (Retry-After)."""

    def __init__(self, message: str, *, status: int, retry_after_s: float | None) -> None:
        super().__init__(message, error_class=f"http_{status}")
        self.retry_after_s = retry_after_s


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 10.2.3); None if
    absent or unreadable. Never negative."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class GuardedResolver(AbstractResolver):
    """Resolves names, then refuses blocked addresses; aiohttp connects only to what this returns,
    so the checked address is the one connected to (no DNS rebinding between check and connect)."""

    def __init__(self, policy: Policy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            check_address(result["host"], self._policy)
        return results

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True, slots=True)
class Response:
    url: str
    status: int
    content_type: str
    body: bytes
    # the URL asked for (`url` is where the redirects ended)
    requested_url: str = ""
    # validators for a later conditional request, and the charset the headers declared
    etag: str | None = None
    last_modified: str | None = None
    charset: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def not_modified(self) -> bool:
        """A 304 to a conditional request: the stored copy is current, no body came."""
        return self.status == 304

    def text(self) -> str:
        """The body as text: by the declared charset, else detected from the bytes, else UTF-8."""
        return decode_text(self.body, self.charset)


def decode_text(body: bytes, declared: str | None) -> str:
    if declared is not None:
        try:
            return body.decode(codecs.lookup(declared).name, errors="replace")
        except LookupError:
            pass  # an unknown charset name: detect as if none was declared
    import charset_normalizer  # only for pages that declare no charset (its import costs a worker's start ~0.1 s)

    best = charset_normalizer.from_bytes(body).best() if body else None
    return str(best) if best is not None else body.decode("utf-8", errors="replace")


class FetchClient:
    """One pooled session per worker; `get` applies the guard to every hop."""

    def __init__(
        self, config: Config, *, policy: Policy | None = None, resolver: AbstractResolver | None = None
    ) -> None:
        self.policy = policy or Policy.configured(config.fetch_allow_private)
        self.max_bytes = config.fetch_max_bytes
        self.user_agent = user_agent(config.fetch_contact_url)
        self._guard = GuardedResolver(self.policy, resolver)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=self._guard, limit=100, ttl_dns_cache=DNS_CACHE_S)
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": ACCEPT_ENCODING}
        self._session = aiohttp.ClientSession(connector=connector, headers=headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        headers: dict[str, str] | None = None,
        max_bytes: int | None = None,
        proxy: str | None = None,
        check_status: bool = True,
    ) -> Response:
        """GET `url`, following up to 5 redirects (each re-checked), through `proxy` if given; raises
        PermanentError or RetryableError (ServerBusy for 429/503), or with `check_status=False` returns any status."""
        current = self._check(url)
        for _ in range(MAX_REDIRECTS + 1):
            async with self._request(current, timeout_s, headers, proxy) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    current = self._check(_redirect_target(current, response.headers["Location"]))
                    continue
                if check_status:
                    _raise_for_status(response, current)
                body = await self._read_capped(response, max_bytes or self.max_bytes)
                return _response(response, current, body, url)
        raise PermanentError(f"more than {MAX_REDIRECTS} redirects from {url}", error_class="too_many_redirects")

    async def post(self, url: str, body: bytes, *, headers: dict[str, str], timeout_s: float = 10.0) -> Response:
        """POST `body` to `url` once (a redirect is an answer, not followed); raises like `get` for errors."""
        target = self._check(url)
        async with self._request(target, timeout_s, headers, None, method="POST", data=body) as response:
            answer = await self._read_capped(response, MAX_POST_ANSWER_BYTES)
            if 300 <= response.status < 400:
                raise PermanentError(f"{target}: HTTP {response.status} (not followed)", error_class="redirected")
            _raise_for_status(response, target)
            return _response(response, target, answer, url)

    def _check(self, url: str) -> URL:
        try:
            return check_url(url, self.policy)
        except BlockedURL as exc:
            raise PermanentError(f"{url}: {exc}", error_class="ssrf_blocked") from None

    @asynccontextmanager
    async def _request(
        self,
        url: URL,
        timeout_s: float,
        headers: dict[str, str] | None,
        proxy: str | None,
        method: str = "GET",
        data: bytes | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        assert self._session is not None, "FetchClient.start() was not called"
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            if proxy is not None:
                # the proxy resolves the target, not our connector: check the target's addresses here
                await self._guard.resolve(url.host or "", url.port or 0)
            async with self._session.request(
                method, url, allow_redirects=False, timeout=timeout, headers=headers, proxy=proxy, data=data
            ) as response:
                yield response
        except BlockedURL as exc:
            raise PermanentError(f"{url}: {exc}", error_class="ssrf_blocked") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedURL):
                raise PermanentError(f"{url}: {exc.os_error}", error_class="ssrf_blocked") from None
            raise RetryableError(f"{url}: cannot connect: {exc}", error_class="connect_error") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"{url}: {type(exc).__name__}: {exc}", error_class="fetch_error") from None

    async def _read_capped(self, response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > max_bytes:
                raise PermanentError(f"response larger than {max_bytes} bytes", error_class="too_large")
            chunks.append(chunk)
        return b"".join(chunks)


def _redirect_target(current: URL, location: str) -> str:
    """Where a redirect points; a Location no URL parser agrees on (a backslash in its host, which browsers read
    as a slash and yarl refuses) is a refused redirect of this page, not an error that retries the whole job."""
    try:
        return str(current.join(URL(location)))
    except (ValueError, TypeError) as exc:
        raise PermanentError(
            f"{current}: refused redirect to {location[:200]!r}: {exc}", error_class="bad_redirect"
        ) from None


def _response(response: aiohttp.ClientResponse, url: URL, body: bytes, requested: str) -> Response:
    headers = response.headers
    return Response(
        str(url),
        response.status,
        response.content_type,
        body,
        requested,
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        charset=response.charset,
    )


def _raise_for_status(response: aiohttp.ClientResponse, url: URL) -> None:
    status = response.status
    if status in BUSY_STATUSES:
        wait_s = retry_after_s(response.headers.get("Retry-After"), datetime.now(UTC))
        raise ServerBusy(f"{url}: HTTP {status}", status=status, retry_after_s=wait_s)
    if status >= 500:
        raise RetryableError(f"{url}: HTTP {status}", error_class=f"http_{status}")
    if status >= 400:
        raise PermanentError(f"{url}: HTTP {status}", error_class=f"http_{status}")


def summary(response: Response, include_body: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "url": response.url,
        "status": response.status,
        "content_type": response.content_type,
        "size": len(response.body),
        "sha256": response.sha256,
        "content_hash": response.sha256,
    }
    if include_body:
        out["body"] = response.text()
    return out
