"""`webhook.deliver`: POST one event to a webhook's URL, signed, through the worker's SSRF-guarded client.

The gateway creates these jobs (one per matching webhook and event); retries, backoff and dead letters are the
job's own. A receiver that answers 5xx or 429, or cannot be reached, is retried; 4xx fails the delivery.
"""

from __future__ import annotations

import time
from typing import Any, cast

from gleaner.handlers import PermanentError, Registry
from gleaner.job_context import JobContext
from gleaner.json_types import JsonInput
from gleaner.services.worker.fetch import FetchClient
from gleaner.services.worker.polite_http import PoliteClient
from gleaner.shared import events, webhooks

LOAD = "SELECT url, secret FROM webhooks WHERE id = $1"
MAX_TIMEOUT_S = 30.0

registry = Registry()
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["webhook_id", "event"],
    "properties": {
        "webhook_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        "event": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
    },
    "additionalProperties": False,
}


@registry.handler(
    webhooks.KIND, schema=SCHEMA, privileged=True, description="POST one event to a webhook's URL, signed"
)
async def deliver(ctx: JobContext) -> JsonInput:
    payload = ctx.job.payload
    client = _fetch_client(ctx.http)
    if client is None:
        raise PermanentError("this worker has no fetch client", error_class="misconfigured")
    row = await ctx.db.fetchrow(LOAD, payload["webhook_id"])
    if row is None:
        return {"skipped": "the webhook was deleted"}
    url, secret = row["url"], row["secret"]
    assert isinstance(url, str) and isinstance(secret, str)
    event = payload["event"]
    assert isinstance(event, dict)
    body = events.encode_one(cast(events.Event, event))
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        webhooks.TIMESTAMP_HEADER: str(timestamp),
        webhooks.SIGNATURE_HEADER: webhooks.signature(secret, timestamp, body),
        webhooks.EVENT_HEADER: str(event["type"]),
        webhooks.DELIVERY_HEADER: str(ctx.job.id),
    }
    response = await client.post(url, body, headers=headers, timeout_s=min(ctx.job.timeout_s, MAX_TIMEOUT_S))
    return {"url": url, "status": response.status}


def _fetch_client(http: object) -> FetchClient | None:
    """The guarded client itself: a delivery is one POST, not a crawl of a site (no robots, no site turns)."""
    if isinstance(http, PoliteClient):
        return http.fetch
    return http if isinstance(http, FetchClient) else None
