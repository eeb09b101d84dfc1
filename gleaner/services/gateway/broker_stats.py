"""RabbitMQ's own counts of the work queues (ready, unacked, consumers) from its management API.

AMQP shows only ready messages and consumers (a passive declare); the unacked count, messages delivered to
workers and not yet acked, is only in the management API. Its figures are sampled by RabbitMQ (every 5 s
by default), so they trail the queue by a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp

MANAGEMENT_PORT = 15672
TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Management:
    """Where the management API is and how to log in; the vhost is the AMQP URL's."""

    base_url: str
    user: str
    password: str
    vhost: str


def management_of(amqp_url: str, management_url: str) -> Management | None:
    """The management API for an AMQP URL: `management_url` if given (credentials from it or from the
    AMQP URL), else the AMQP host on port 15672; None when turned off (`off`). Pure."""
    if management_url == "off":
        return None
    amqp = urlsplit(amqp_url)
    vhost = unquote(amqp.path[1:]) if len(amqp.path) > 1 else "/"
    if management_url:
        given = urlsplit(management_url)
        base = f"{given.scheme}://{given.hostname}" + (f":{given.port}" if given.port else "") + given.path.rstrip("/")
        user, password = given.username or amqp.username, given.password or amqp.password
    else:
        scheme = "https" if amqp.scheme == "amqps" else "http"
        base = f"{scheme}://{amqp.hostname or '127.0.0.1'}:{MANAGEMENT_PORT}"
        user, password = amqp.username, amqp.password
    return Management(base, unquote(user or "guest"), unquote(password or "guest"), vhost)


async def queue_counts(management: Management, names: dict[str, str]) -> dict[str, dict[str, int | None]]:
    """queue → {ready, unacked, consumers} for the broker queue names given (queue → broker name).

    Raises aiohttp.ClientError or TimeoutError when the API cannot be asked; a queue the API does not
    list is left out.
    """
    url = f"{management.base_url}/api/queues/{quote(management.vhost, safe='')}"
    params = {"columns": "name,messages_ready,messages_unacknowledged,consumers"}
    auth = aiohttp.BasicAuth(management.user, management.password)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with (
        aiohttp.ClientSession(auth=auth, timeout=timeout) as session,
        session.get(url, params=params) as response,
    ):
        response.raise_for_status()
        listed: list[dict[str, Any]] = await response.json()
    by_name = {str(q.get("name")): q for q in listed if isinstance(q, dict)}
    out: dict[str, dict[str, int | None]] = {}
    for queue, broker_name in names.items():
        found = by_name.get(broker_name)
        if found is not None:
            out[queue] = {
                "ready": int(found.get("messages_ready") or 0),
                "unacked": int(found.get("messages_unacknowledged") or 0),
                "consumers": int(found.get("consumers") or 0),
            }
    return out
