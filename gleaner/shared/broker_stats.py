"""RabbitMQ's own counts of the work queues (ready, unacked, consumers): for GET /queues and the relay's lost-message
rule. From its management API when it answers, else from passive declares.

AMQP shows only ready messages and consumers (a passive declare); the unacked count, messages delivered to
workers and not yet acked, is only in the management API. Its figures are sampled by RabbitMQ (every 5 s
by default), so they trail the queue by a few seconds.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import aiohttp

from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config

log = logging.getLogger(__name__)

# queue → {ready, unacked, consumers}
Counts = dict[str, dict[str, int | None]]

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


async def queue_counts(management: Management, names: dict[str, str]) -> Counts:
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
    out: Counts = {}
    for queue, broker_name in names.items():
        found = by_name.get(broker_name)
        if found is not None:
            out[queue] = {
                "ready": int(found.get("messages_ready") or 0),
                "unacked": int(found.get("messages_unacknowledged") or 0),
                "consumers": int(found.get("consumers") or 0),
            }
    return out


async def ask_broker(config: Config, broker: Broker) -> Counts:
    """queue → {ready, unacked, consumers}: from the management API when it answers, else from passive
    declares without `unacked`; empty when the broker is unreachable."""
    management = management_of(config.amqp_url, config.rabbitmq_management_url)
    if management is not None:
        names = {q: broker.topology.work_queue(q) for q in config.queues}
        try:
            return await queue_counts(management, names)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("management API unavailable, counting by passive declare: %r", exc)
    return await declared_counts(config, broker)


async def declared_counts(config: Config, broker: Broker) -> Counts:
    """queue → {ready, consumers} by a passive declare per queue (unacked is None): exact at the moment asked, where
    the management API's figures trail by its sampling interval; empty when not connected."""
    out: Counts = {}
    connection = broker.connection
    if connection is None or connection.is_closed:
        return out
    for name in config.queues:
        # a failed passive declare closes its channel, so each queue gets its own
        with contextlib.suppress(aio_pika.exceptions.AMQPError, OSError, TimeoutError, RuntimeError):
            async with connection.channel(publisher_confirms=False) as channel:
                queue = await channel.declare_queue(broker.topology.work_queue(name), passive=True, timeout=5)
                result = queue.declaration_result
                out[name] = {
                    "ready": int(result.message_count or 0),
                    "unacked": None,
                    "consumers": int(result.consumer_count or 0),
                }
    return out
