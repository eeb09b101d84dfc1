"""RabbitMQ's management API, for tests that drop one service's own connection (never anyone else's)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from tests.support.contract import checked_session

MANAGEMENT_URL = "http://127.0.0.1:15672/api"
HEADERS = {"Authorization": aiohttp.encode_basic_auth("guest", "guest")}


def connection_prefix(service: str, namespace: str) -> str:
    """The start of the connection names a Gleaner service of a test namespace gives (`gleaner.shared.amqp.Broker`)."""
    return f"gleaner-{service} {namespace} "


async def connections_of(service: str, namespace: str) -> list[str]:
    """The broker's names of the open connections of `service` in `namespace`."""
    prefix = connection_prefix(service, namespace)
    async with (
        checked_session(headers=HEADERS) as session,
        session.get(f"{MANAGEMENT_URL}/connections") as response,
    ):
        listed: list[dict[str, Any]] = await response.json()
    return [
        c["name"] for c in listed if str(c.get("client_properties", {}).get("connection_name", "")).startswith(prefix)
    ]


async def close_connections(names: list[str]) -> None:
    """Close connections from the broker's side, as a network blip or a broker restart would."""
    async with checked_session(headers=HEADERS) as session:
        for name in names:
            url = f"{MANAGEMENT_URL}/connections/{quote(name, safe='')}"
            async with session.delete(url, headers={"X-Reason": "gleaner test: connection drop"}) as response:
                assert response.status in (204, 404), response.status


async def queue_messages(queue: str) -> int:
    """Messages in a queue of the default vhost, ready and unacked (as the management API last sampled them)."""
    url = f"{MANAGEMENT_URL}/queues/%2F/{quote(queue, safe='')}"
    async with checked_session(headers=HEADERS) as session, session.get(url) as response:
        data: dict[str, Any] = await response.json()
    return int(data.get("messages", 0))
