"""`http.fetch`: GET one URL through the job context's client and store it as a scrape result."""

from __future__ import annotations

from typing import Any

from gleaner.services.worker.context import JobContext
from gleaner.services.worker.fetch import summary
from gleaner.services.worker.polite_http import BlockedByRobots, client_of
from gleaner.services.worker.results import conditional_headers, save_blocked
from gleaner.shared.errors import PermanentError
from gleaner.shared.field_checks import boolean, members, number
from gleaner.shared.kind_rules import PayloadCheck
from gleaner.shared.urlguard import Policy, url_field


async def http_fetch(ctx: JobContext) -> Any:
    """Payload: `url` (required), `include_body` (default false), `store_body` (default true),
    `timeout_s` (default: the job's timeout, capped by the site's)."""
    payload = ctx.job.payload if isinstance(ctx.job.payload, dict) else {}
    url = payload.get("url")
    if not isinstance(url, str) or not url:
        raise PermanentError("payload.url must be a non-empty string", error_class="bad_payload")
    timeout_s = payload.get("timeout_s", ctx.job.timeout_s)
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
        stored = await ctx.save_result(response, keep_body=bool(payload.get("store_body", True)))
        out.update(result_id=stored.id, unchanged=stored.unchanged)
    return out


def payload_check(policy: Policy) -> PayloadCheck:
    """What the gateway checks at submit: the URL through the fetch client's own guard (other members are the
    submitter's: a fan-out adds its own)."""
    fields = members(
        {"url": url_field(policy), "include_body": boolean, "store_body": boolean, "timeout_s": number(0.001, 86_400)},
        closed=False,
    )

    def check(payload: Any) -> list[tuple[str, str]]:
        missing = isinstance(payload, dict) and payload.get("url") is None
        return fields(payload) + ([("url", "is required: the URL to fetch")] if missing else [])

    return check


def register(registry: Any) -> None:
    policy = Policy.configured(registry.config.fetch_allow_private)
    registry.add("http.fetch", http_fetch, payload_check=payload_check(policy))
