"""API keys are listed and revoked from the CLI and the admin API; a revoked key is refused within a second on
every gateway replica (issue 11: it kept working up to 30 s, and there was no command)."""

from __future__ import annotations

import time

import asyncpg
import pytest

from tests.support.stack import Api, Stack, eventually

REFUSED_WITHIN_S = 1.0
# the application name of each gateway's revocation listener (gleaner.services.gateway.auth.LISTENER_SETTINGS)
APP = "gleaner-gateway-keys"
# this test's gateways only: other stacks on the machine's PostgreSQL have their own databases
OURS = "application_name = $1 AND datname = current_database()"


@pytest.fixture
async def gateways(stack: Stack, api_factory: type[Api]) -> list[Api]:
    first, second = await stack.start("gateway"), await stack.start("gateway")
    return [api_factory(first.url), api_factory(second.url)]


async def new_key(stack: Stack, name: str) -> str:
    created = await stack.run_cli("apikey", "create", "--name", name, "--scopes", "jobs:read")
    return created.strip().splitlines()[-1]


async def seconds_until_refused_everywhere(gateways: list[Api], key: str, api_factory: type[Api]) -> float:
    """Poll every gateway with `key` until each answers 401; the time it took from now."""
    started = time.monotonic()
    clients = [api_factory(g.base_url.removesuffix("/api/v1"), token=key) for g in gateways]

    async def all_refuse() -> bool:
        return all([(await client.request("GET", "/jobs"))[0] == 401 for client in clients])

    await eventually(all_refuse, timeout_s=10, interval_s=0.02, what="the revoked key refused by every gateway")
    return time.monotonic() - started


async def warm(gateways: list[Api], key: str, api_factory: type[Api]) -> None:
    """Each gateway has the key in its cache (the case a cache keeps serving after a revocation)."""
    for gateway in gateways:
        client = api_factory(gateway.base_url.removesuffix("/api/v1"), token=key)
        assert (await client.request("GET", "/jobs"))[0] == 200


async def test_a_key_revoked_through_the_api_or_the_cli_is_refused_by_every_gateway_within_a_second(
    stack: Stack, gateways: list[Api], api_factory: type[Api]
) -> None:
    by_api, by_cli = await new_key(stack, "by-api"), await new_key(stack, "by-cli")
    await warm(gateways, by_api, api_factory)
    await warm(gateways, by_cli, api_factory)
    status, listing = await gateways[0].request("GET", "/api-keys")
    assert status == 200
    ids = {k["name"]: k["id"] for k in listing["api_keys"]}
    assert all(k["revoked_at"] is None and "key" not in k for k in listing["api_keys"])

    status, revoked = await gateways[0].request("POST", f"/api-keys/{ids['by-api']}/revoke")
    assert status == 200 and revoked["revoked_at"] is not None
    assert await seconds_until_refused_everywhere(gateways, by_api, api_factory) < REFUSED_WITHIN_S

    printed = await stack.run_cli("apikey", "revoke", str(ids["by-cli"]))
    assert f"revoked API key {ids['by-cli']}" in printed
    assert await seconds_until_refused_everywhere(gateways, by_cli, api_factory) < REFUSED_WITHIN_S

    table = await stack.run_cli("apikey", "list")
    assert "by-api" in table and "by-cli" in table and table.count("Z") >= 4  # created and revoked times
    missing = await stack.run_cli("apikey", "revoke", "999999", check=False)
    assert "no API key with id 999999" in missing


async def test_a_revocation_missed_while_the_listener_is_down_still_takes_effect_within_a_second(
    stack: Stack, gateways: list[Api], db: asyncpg.Connection, api_factory: type[Api]
) -> None:
    key = await new_key(stack, "quiet")
    await warm(gateways, key, api_factory)

    async def both_listening() -> bool:
        # eventually() returns the first truthy answer: a count of 1 (one gateway back) must not end the wait
        return int(await db.fetchval(f"SELECT count(*) FROM pg_stat_activity WHERE {OURS}", APP)) == 2

    assert await eventually(both_listening, what="both gateways listening")
    # cut the listeners' connections, then revoke without the notification they would have heard
    await db.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {OURS}", APP)
    await db.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'quiet'")
    assert await seconds_until_refused_everywhere(gateways, key, api_factory) < REFUSED_WITHIN_S
    assert await eventually(both_listening, what="both gateways listening again")


async def test_only_admin_may_list_or_revoke_keys(stack: Stack, gateways: list[Api], api_factory: type[Api]) -> None:
    reader = api_factory(gateways[0].base_url.removesuffix("/api/v1"), token=await new_key(stack, "reader"))
    assert (await reader.request("GET", "/api-keys"))[0] == 403
    assert (await reader.request("POST", "/api-keys/1/revoke"))[0] == 403
    assert (await gateways[0].request("POST", "/api-keys/999999/revoke"))[0] == 404
