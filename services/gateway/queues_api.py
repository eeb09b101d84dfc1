"""GET /queues: broker counts (management API, else a passive declare) beside PostgreSQL counts per queue."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import aio_pika
import aiohttp
from aiohttp import web

from services.gateway.broker_stats import management_of, queue_counts
from services.gateway.context import Gateway, gateway_of
from services.gateway.job_views import json_response

log = logging.getLogger(__name__)

COUNTS = """
SELECT queue,
    count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
    count(*) FILTER (WHERE state = 'queued') AS queued,
    count(*) FILTER (WHERE state = 'retrying') AS retrying,
    count(*) FILTER (WHERE state = 'running') AS running,
    EXTRACT(EPOCH FROM (now() - min(run_at) FILTER (
        WHERE state IN ('queued', 'retrying') AND run_at <= now())))::float8 AS oldest_waiting_s
FROM jobs
WHERE state IN ('scheduled', 'queued', 'retrying', 'running')
GROUP BY queue
"""


async def _broker_counts(gw: Gateway) -> dict[str, dict[str, int | None]]:
    """queue → {ready, unacked, consumers}: from the management API when it answers, else from passive
    declares without `unacked`; empty when the broker is unreachable."""
    management = management_of(gw.config.amqp_url, gw.config.rabbitmq_management_url)
    if management is not None:
        names = {q: gw.broker.topology.work_queue(q) for q in gw.config.queues}
        try:
            return await queue_counts(management, names)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("management API unavailable, counting by passive declare: %r", exc)
    return await _declared_counts(gw)


async def _declared_counts(gw: Gateway) -> dict[str, dict[str, int | None]]:
    out: dict[str, dict[str, int | None]] = {}
    connection = gw.broker.connection
    if connection is None or connection.is_closed:
        return out
    for name in gw.config.queues:
        # a failed passive declare closes its channel, so each queue gets its own
        with contextlib.suppress(aio_pika.exceptions.AMQPError, OSError, TimeoutError, RuntimeError):
            async with connection.channel(publisher_confirms=False) as channel:
                queue = await channel.declare_queue(gw.broker.topology.work_queue(name), passive=True, timeout=5)
                result = queue.declaration_result
                out[name] = {
                    "ready": int(result.message_count or 0),
                    "unacked": None,
                    "consumers": int(result.consumer_count or 0),
                }
    return out


def queue_view(name: str, broker: dict[str, int | None] | None, counts: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": broker["ready"] if broker is not None else None,
        "unacked": broker["unacked"] if broker is not None else None,
        "consumers": broker["consumers"] if broker is not None else None,
        "scheduled": counts["scheduled"] if counts else 0,
        "queued": counts["queued"] if counts else 0,
        "retrying": counts["retrying"] if counts else 0,
        "running": counts["running"] if counts else 0,
        "oldest_waiting_s": counts["oldest_waiting_s"] if counts else None,
    }


async def list_queues(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    rows = {r["queue"]: r for r in await gw.pool.fetch(COUNTS)}
    depths = await _broker_counts(gw)
    return json_response({"queues": [queue_view(q, depths.get(q), rows.get(q)) for q in gw.config.queues]})
