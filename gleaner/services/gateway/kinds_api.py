"""GET /kinds and /kinds/{name}: the kinds workers registered, their schemas and how many alive workers serve them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.job_views import Row, json_response, timestamp
from gleaner.shared.errors import Problem

# alive as GET /workers counts it: not stopped and seen within one lease; a kind's queues are those its alive
# workers consume, or the last ones registered when none is alive
KINDS = """
WITH alive AS (
    SELECT queues, kinds FROM workers
    WHERE stopped_at IS NULL AND last_seen_at > now() - make_interval(secs => $1)
)
SELECT k.name, k.queue, k.description, k.payload_schema, k.privileged, k.registered_at, k.last_seen_at,
       (SELECT count(*) FROM alive WHERE k.name = ANY(alive.kinds))::integer AS workers_alive,
       COALESCE((SELECT array_agg(DISTINCT q ORDER BY q) FROM alive, unnest(alive.queues) AS q
                 WHERE k.name = ANY(alive.kinds)), k.queues) AS queues
FROM kinds AS k
WHERE $2::text IS NULL OR k.name = $2
ORDER BY k.name
"""


def kind_view(row: Row) -> dict[str, Any]:
    return {
        "name": row["name"],
        "queue": row["queue"],
        "queues": list(row["queues"]),
        "description": row["description"],
        "schema": row["payload_schema"],
        "privileged": row["privileged"],
        "workers_alive": row["workers_alive"],
        "registered_at": timestamp(row["registered_at"]),
        "last_seen_at": timestamp(row["last_seen_at"]),
    }


async def list_kinds(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    rows = await gw.pool.fetch(KINDS, gw.config.lease_s, None)
    return json_response({"kinds": [kind_view(r) for r in rows]})


async def get_kind(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    name = request.match_info["name"]
    row = await gw.pool.fetchrow(KINDS, gw.config.lease_s, name)
    if row is None:
        raise Problem(404, "Not Found", f"no worker ever registered the kind {name!r}")
    return json_response(kind_view(row))
