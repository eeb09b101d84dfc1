"""GET /workers: the workers that announced themselves, alive or recently gone, with what they consume."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.job_views import Row, json_response, timestamp

# alive: not stopped and seen within one lease (three heartbeats); gone ones stay listed for an hour
WORKERS = """
SELECT id, queues, concurrency, running, started_at, last_seen_at, stopped_at,
       stopped_at IS NULL AND last_seen_at > now() - make_interval(secs => $1) AS alive
FROM workers
WHERE last_seen_at > now() - interval '1 hour'
ORDER BY started_at, id
"""


def worker_view(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "alive": row["alive"],
        "queues": list(row["queues"]),
        "concurrency": row["concurrency"],
        "running": row["running"] if row["alive"] else 0,
        "started_at": timestamp(row["started_at"]),
        "last_seen_at": timestamp(row["last_seen_at"]),
        "stopped_at": timestamp(row["stopped_at"]),
    }


async def list_workers(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    rows = await gw.pool.fetch(WORKERS, gw.config.lease_s)
    workers = [worker_view(r) for r in rows]
    alive = [w for w in workers if w["alive"]]
    return json_response(
        {
            "alive": len(alive),
            "running": sum(w["running"] for w in alive),
            "capacity": sum(w["concurrency"] for w in alive),
            "workers": workers,
        }
    )
