"""API keys: Bearer authentication with a short in-process cache, scope checks, and `gleaner apikey create`."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared.config import Config
from shared.errors import GleanerError, Problem

READ, WRITE, ADMIN = "jobs:read", "jobs:write", "admin"
SCOPES = (READ, WRITE, ADMIN)
CACHE_TTL_S = 30.0
MISS_TTL_S = 5.0
CACHE_MAX = 10_000
KEY_PREFIX = "glk_"
API_PREFIX = "/api/v1"
PUBLIC_PATHS = frozenset({f"{API_PREFIX}/openapi.json"})
# changes under these prefixes need the admin scope (`/schedule` covers /schedules and /scheduler)
ADMIN_PATHS = tuple(f"{API_PREFIX}/{name}" for name in ("dead-letters", "sites", "schedule", "queues"))

LOOKUP = "SELECT id, name, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
INSERT = "INSERT INTO api_keys (name, key_hash, scopes) VALUES ($1, $2, $3) RETURNING id"


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
    """GETs read; dead-letter, site, schedule, scheduler and queue changes are admin; every other change writes."""
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
        self._lock = asyncio.Lock()

    async def principal(self, key: str) -> Principal | None:
        if self._admin_token is not None and hmac.compare_digest(key.encode(), self._admin_token.encode()):
            return Principal("admin-token", frozenset({ADMIN}))
        digest = hash_key(key)
        cached = self._entries.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        row = await self._pool.fetchrow(LOOKUP, digest)
        found = Principal(f"key-{row['id']}", frozenset(row["scopes"])) if row is not None else None
        if len(self._entries) >= CACHE_MAX:
            self._entries.clear()
        self._entries[digest] = (found, now + (CACHE_TTL_S if found is not None else MISS_TTL_S))
        return found


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


def parse_scopes(raw: str) -> list[str]:
    scopes = list(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise GleanerError(f"scopes must be a comma-separated subset of {', '.join(SCOPES)}; got {raw!r}")
    return scopes


async def create_key(config: Config, name: str, scopes: list[str]) -> str:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    connection = await asyncpg.connect(config.database_url)
    try:
        await connection.fetchval(INSERT, name, hash_key(key), scopes)
    finally:
        await connection.close()
    return key


def create_key_cli(config: Config, name: str, scopes: str) -> int:
    """`gleaner apikey create`: print the new key once (only its hash is stored)."""
    if not name.strip():
        raise GleanerError("--name must not be empty")
    parsed = parse_scopes(scopes)
    key = asyncio.run(create_key(config, name.strip(), parsed))
    print(f"created API key {name.strip()!r} with scopes {','.join(parsed)}; it is shown only once:")
    print(key)
    return 0
