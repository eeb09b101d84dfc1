"""`http.fetch`: GET one URL through the job context's client and store it as a scrape result."""

from __future__ import annotations

from typing import Any

from gleaner.handlers import PermanentError, Registry
from gleaner.job_context import JobContext
from gleaner.services.worker.fetch import summary
from gleaner.services.worker.polite_http import BlockedByRobots, client_of
from gleaner.services.worker.results import conditional_headers, save_blocked

registry = Registry()
# other members are the submitter's: a fan-out adds its own
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "minLength": 1, "format": "uri", "description": "the URL to fetch"},
        "include_body": {"type": ["boolean", "null"]},
        "store_body": {"type": ["boolean", "null"]},
        "timeout_s": {"type": ["number", "null"], "minimum": 0.001, "maximum": 86_400},
    },
}


@registry.handler("http.fetch", schema=SCHEMA)
async def http_fetch(ctx: JobContext) -> Any:
    """GET one URL and store it as a scrape result.

    Payload: `url` (required), `include_body` (default false), `store_body` (default true),
    `timeout_s` (default: the job's timeout, capped by the site's)."""
    payload = ctx.job.payload if isinstance(ctx.job.payload, dict) else {}
    url = payload.get("url")
    if not isinstance(url, str) or not url:
        raise PermanentError("payload.url must be a non-empty string", error_class="bad_payload")
    timeout_s = payload.get("timeout_s") or ctx.job.timeout_s
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
        raise PermanentError("payload.timeout_s must be a positive number", error_class="bad_payload")
    client = client_of(ctx.http)
    if client is None:
        raise PermanentError("this worker has no fetch client", error_class="misconfigured")
    try:
        response = await client.get(url, timeout_s=float(timeout_s), headers=await conditional_headers(ctx, url))
    except BlockedByRobots:
        return {"url": url, "blocked_by_robots": True, "result_id": await save_blocked(ctx, url)}
    out = summary(response, bool(payload.get("include_body", False)))
    if ctx.results is not None:
        stored = await ctx.save_result(response, keep_body=payload.get("store_body") is not False)
        out.update(result_id=stored.id, unchanged=stored.unchanged)
    return out
