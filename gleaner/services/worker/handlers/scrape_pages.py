"""`scrape.pages`: fetch a list of URLs of one site, counting requested, completed and failed pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gleaner.handlers import HandlerError, Partial, PermanentError, Registry
from gleaner.job_context import JobContext
from gleaner.services.worker.polite_http import BlockedByRobots, client_of
from gleaner.services.worker.results import conditional_headers, save_blocked

DEFAULT_PARTIAL_ERROR_RATIO = 0.3
MAX_URLS = 1000
registry = Registry()
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["urls"],
    "properties": {
        "urls": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_URLS,
            "items": {"type": "string", "minLength": 1, "format": "uri"},
        },
        "store_body": {"type": ["boolean", "null"]},
    },
}


@dataclass(slots=True)
class PageCounts:
    """How a page list went; `errors` keeps the first failures for the result."""

    requested: int
    completed: int = 0
    failed: int = 0
    unchanged: int = 0
    # disallowed by robots.txt: never requested, and not failures
    blocked_by_robots: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "completed": self.completed,
            "failed": self.failed,
            "unchanged": self.unchanged,
            "blocked_by_robots": self.blocked_by_robots,
            "errors": self.errors[:20],
        }


def verdict(counts: PageCounts, partial_error_ratio: float) -> Any:
    """All pages done → the counts; failed share ≤ ratio → Partial; more → a permanent failure."""
    if counts.failed == 0:
        return counts.as_json()
    if counts.failed <= partial_error_ratio * counts.requested:
        return Partial(counts.as_json())
    raise PermanentError(
        f"{counts.failed} of {counts.requested} pages failed (more than {partial_error_ratio:.0%})",
        error_class="too_many_page_failures",
    )


def page_urls(payload: Any) -> list[str]:
    urls = payload.get("urls") if isinstance(payload, dict) else None
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_URLS:
        raise PermanentError(f"payload.urls must be a list of 1 to {MAX_URLS} URLs", error_class="bad_payload")
    if not all(isinstance(u, str) and u for u in urls):
        raise PermanentError("payload.urls must hold non-empty strings", error_class="bad_payload")
    return list(urls)


@registry.handler("scrape.pages", schema=SCHEMA)
async def scrape_pages(ctx: JobContext) -> Any:
    """Fetch a list of URLs of one site, counting requested, completed and failed pages.

    Payload: `urls` (required), `store_body` (default true). Each page is stored as a scrape result.

    A re-run of the job (a retry, or after it was deferred mid-list) skips the pages it stored already.
    """
    urls = page_urls(ctx.job.payload)
    keep_body = ctx.job.payload.get("store_body") is not False
    client = client_of(ctx.http)
    if client is None:
        raise PermanentError("this worker has no fetch client", error_class="misconfigured")
    done = await ctx.results.done_urls() if ctx.results is not None else {}
    blocked = sum(done.get(url, False) for url in urls)
    counts = PageCounts(len(urls), sum(url in done for url in urls) - blocked, blocked_by_robots=blocked)
    for url in (u for u in urls if u not in done):
        try:
            response = await client.get(url, headers=await conditional_headers(ctx, url))
        except BlockedByRobots:
            counts.blocked_by_robots += 1
            await save_blocked(ctx, url)
        except HandlerError as exc:
            counts.failed += 1
            counts.errors.append({"url": url, "class": exc.error_class})
        else:
            counts.completed += 1
            stored = await ctx.save_result(response, keep_body=keep_body)
            counts.unchanged += int(stored.unchanged)
        await ctx.progress(counts.as_json())
    ratio = ctx.site.partial_error_ratio if ctx.site is not None else DEFAULT_PARTIAL_ERROR_RATIO
    return verdict(counts, ratio)
