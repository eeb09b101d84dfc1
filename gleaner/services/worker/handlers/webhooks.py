"""`webhook.deliver`: POST one event to a webhook's URL, signed, through the worker's SSRF-guarded client.

The gateway creates these jobs (one per matching webhook and event); retries, backoff and dead letters are the
job's own. A receiver that answers 5xx or 429, or cannot be reached, is retried; 4xx fails the delivery.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gleaner.services.worker.context import JobContext
from gleaner.services.worker.fetch import FetchClient
from gleaner.shared import webhooks
from gleaner.shared.errors import PermanentError
from gleaner.shared.field_checks import Invalid, integer, members

LOAD = "SELECT url, secret FROM webhooks WHERE id = $1"
MAX_TIMEOUT_S = 30.0


def _event(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise Invalid("must be an event object with a `type`")
    return value


PAYLOAD = members({"webhook_id": integer(1, 2**63 - 1), "event": _event})


async def deliver(ctx: JobContext) -> Any:
    payload = ctx.job.payload
    problems = PAYLOAD(payload) or ([] if payload.get("webhook_id") else [("webhook_id", "is required")])
    if problems:
        raise PermanentError(f"bad payload: {problems}", error_class="bad_payload")
    if not isinstance(ctx.http, FetchClient):
        raise PermanentError("this worker has no fetch client", error_class="misconfigured")
    row = await ctx.db.fetchrow(LOAD, payload["webhook_id"])
    if row is None:
        return {"skipped": "the webhook was deleted"}
    body = orjson.dumps(payload["event"])
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        webhooks.TIMESTAMP_HEADER: str(timestamp),
        webhooks.SIGNATURE_HEADER: webhooks.signature(row["secret"], timestamp, body),
        webhooks.EVENT_HEADER: payload["event"]["type"],
        webhooks.DELIVERY_HEADER: str(ctx.job.id),
    }
    response = await ctx.http.post(row["url"], body, headers=headers, timeout_s=min(ctx.job.timeout_s, MAX_TIMEOUT_S))
    return {"url": row["url"], "status": response.status}


def register(registry: Any) -> None:
    registry.add(webhooks.KIND, deliver, privileged=True, payload_check=PAYLOAD)
