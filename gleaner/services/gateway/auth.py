"""API keys: Bearer authentication with an in-process cache that revocations clear at once, and scope checks.

Every gateway LISTENs for revocations on a dedicated connection and drops its cache when one arrives, so a revoked
key is refused on every replica within milliseconds. While that connection is down (and until it is back and the
cache cleared), cached keys are trusted for one second only.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from gleaner.shared.config import Config
from gleaner.shared.errors import Problem

log = logging.getLogger(__name__)

READ, WRITE, ADMIN = "jobs:read", "jobs:write", "admin"
SCOPES = (READ, WRITE, ADMIN)
CACHE_TTL_S = 30.0
# how long a cached key is trusted while revocations cannot be heard
FALLBACK_TTL_S = 1.0
MISS_TTL_S = 5.0
CACHE_MAX = 10_000
API_PREFIX = "/api/v1"
PUBLIC_PATHS = frozenset({f"{API_PREFIX}/openapi.json"})
# changes under these prefixes need the admin scope (`/schedule` covers /schedules and /scheduler)
ADMIN_PATHS = tuple(f"{API_PREFIX}/{name}" for name in ("dead-letters", "sites", "schedule", "queues"))
# everything under these needs the admin scope, reads included
ADMIN_ONLY_PATHS = (f"{API_PREFIX}/api-keys", f"{API_PREFIX}/webhooks")
# `gleaner apikey revoke` and POST /api-keys/{id}/revoke notify here; the payload is the key's id
REVOKED_CHANNEL = "gleaner_api_keys"
LISTENER_SETTINGS = {"application_name": "gleaner-gateway-keys"}
RECONNECT_S = 1.0
PING_S = 1.0

LOOKUP = "SELECT id, name, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: `name` identifies them for idempotency keys."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


# set by the middleware for the request's task (contextvars need no aiohttp request storage)
current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def required_scope(method: str, path: str) -> str:
    """GETs read; dead-letter, site, schedule, scheduler and queue changes are admin; every other change writes.
    API keys are admin's alone, to read them too."""
    if path.startswith(ADMIN_ONLY_PATHS):
        return ADMIN
    if method in ("GET", "HEAD", "OPTIONS"):
        return READ
    if path.startswith(ADMIN_PATHS):
        return ADMIN
    return WRITE


def bearer_of(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="gleaner"'})


class KeyCache:
    """sha256(key) → Principal (or None) for a while, so authentication costs no round trip per request."""

    def __init__(self, pool: asyncpg.Pool, admin_token: str | None) -> None:
        self._pool = pool
        self._admin_token = admin_token
        self._entries: dict[str, tuple[Principal | None, float]] = {}
        # set while the revocation listener is connected: only then may a key stay cached CACHE_TTL_S
        self.listening = False
        # moves on with every forget(), so a lookup that raced a revocation does not cache what it read
        self._generation = 0

    def forget(self) -> None:
        """Drop every cached key (a key was revoked, or revocations may have been missed)."""
        self._entries.clear()
        self._generation += 1

    async def principal(self, key: str) -> Principal | None:
        if self._admin_token is not None and hmac.compare_digest(key.encode(), self._admin_token.encode()):
            return Principal("admin-token", frozenset({ADMIN}))
        digest = hash_key(key)
        cached = self._entries.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        generation = self._generation
        row = await self._pool.fetchrow(LOOKUP, digest)
        found = Principal(f"key-{row['id']}", frozenset(row["scopes"])) if row is not None else None
        if generation != self._generation:
            return found
        if len(self._entries) >= CACHE_MAX:
            self._entries.clear()
        ttl_s = (CACHE_TTL_S if self.listening else FALLBACK_TTL_S) if found is not None else MISS_TTL_S
        self._entries[digest] = (found, now + ttl_s)
        return found


async def follow_revocations(config: Config, cache: KeyCache) -> None:
    """Keep a connection LISTENing for revocations, clearing the cache on each; runs until cancelled.

    Losing the connection clears the cache too and trusts keys read meanwhile for FALLBACK_TTL_S only, so a
    revocation missed while it is down still takes effect within a second.
    """
    while True:
        try:
            connection = await asyncpg.connect(config.database_url, timeout=5, server_settings=LISTENER_SETTINGS)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("cannot listen for API key revocations (keys are trusted 1 s meanwhile): %r", exc)
            await asyncio.sleep(RECONNECT_S)
            continue
        try:
            await _listen(connection, cache)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("lost the API key revocation listener (keys are trusted 1 s meanwhile): %r", exc)
        finally:
            cache.listening = False
            cache.forget()
            connection.terminate()
        await asyncio.sleep(RECONNECT_S)


async def _listen(connection: asyncpg.Connection, cache: KeyCache) -> None:
    """Listen until the connection ends; a ping every PING_S finds one that died without a word."""
    lost = asyncio.Event()

    def on_lost(_: Any) -> None:
        cache.listening = False
        cache.forget()
        lost.set()

    connection.add_termination_listener(on_lost)
    await connection.add_listener(REVOKED_CHANNEL, lambda *_: cache.forget())
    cache.forget()
    cache.listening = True
    while not lost.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lost.wait(), PING_S)
        if not lost.is_set():
            await connection.fetchval("SELECT 1", timeout=PING_S)


def auth_middleware(cache_of: Callable[[web.Application], KeyCache]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not path.startswith(API_PREFIX) or path in PUBLIC_PATHS:
            return await handler(request)
        key = bearer_of(request.headers.get("Authorization"))
        if key is None:
            raise unauthorized("send an API key as `Authorization: Bearer <key>`")
        principal = await cache_of(request.app).principal(key)
        if principal is None:
            raise unauthorized("the API key is unknown or revoked")
        scope = required_scope(request.method, path)
        if not principal.allows(scope):
            raise Problem(403, "Forbidden", f"this key lacks the `{scope}` scope")
        token = current_principal.set(principal)
        try:
            return await handler(request)
        finally:
            current_principal.reset(token)

    return middleware
