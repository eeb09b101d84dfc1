"""API keys: create, list and revoke them, for `gleaner apikey …` (straight to PostgreSQL, so a first key needs
no running gateway) and the admin API (GET /api-keys, POST /api-keys/{id}/revoke). A revocation notifies every
gateway, which drops its cached keys at once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from gleaner.services.gateway.auth import REVOKED_CHANNEL, SCOPES, hash_key
from gleaner.services.gateway.bodies import id_param
from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.job_views import Row, json_response, timestamp
from gleaner.shared.config import Config
from gleaner.shared.db import Connection
from gleaner.shared.errors import GleanerError, Problem

KEY_PREFIX = "glk_"
INSERT = "INSERT INTO api_keys (name, key_hash, scopes) VALUES ($1, $2, $3) RETURNING id"
LIST = "SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY id"
# revoking twice keeps the first revocation time
REVOKE = """
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
RETURNING id, name, scopes, created_at, revoked_at
"""
NOTIFY = "SELECT pg_notify($1, $2)"
T = TypeVar("T")


def key_view(row: Row) -> dict[str, Any]:
    """A key as listed: never its secret (only its hash is stored)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "scopes": list(row["scopes"]),
        "created_at": timestamp(row["created_at"]),
        "revoked_at": timestamp(row["revoked_at"]),
    }


async def revoke(connection: Connection, key_id: int) -> asyncpg.Record | None:
    """Revoke a key and tell every gateway in the same transaction (the notification is sent at commit)."""
    async with connection.transaction():
        row = await connection.fetchrow(REVOKE, key_id)
        if row is not None:
            await connection.execute(NOTIFY, REVOKED_CHANNEL, str(key_id))
    return row


async def list_api_keys(request: web.Request) -> web.Response:
    rows = await gateway_of(request).pool.fetch(LIST)
    return json_response({"api_keys": [key_view(r) for r in rows]})


async def revoke_api_key(request: web.Request) -> web.Response:
    """Refused on every gateway within a second; the key stays listed with its `revoked_at`."""
    key_id = id_param(request, "API key")
    async with gateway_of(request).pool.acquire() as connection:
        row = await revoke(connection, key_id)
    if row is None:
        raise Problem(404, "Not Found", f"API key {key_id} does not exist")
    return json_response(key_view(row))


def parse_scopes(raw: str) -> list[str]:
    scopes = list(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise GleanerError(f"scopes must be a comma-separated subset of {', '.join(SCOPES)}; got {raw!r}")
    return scopes


def with_connection(config: Config, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` on a connection of its own (the `gleaner apikey` commands need no running gateway)."""

    async def run() -> T:
        connection = await asyncpg.connect(config.database_url)
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(run())


def create(config: Config, name: str, scopes: list[str]) -> str:
    """A new key (returned once; only its hash is stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with_connection(config, lambda c: c.fetchval(INSERT, name, hash_key(key), scopes))
    return key
