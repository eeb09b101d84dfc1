"""A handler module as a user would write it, with its test through `gleaner.testing`.

`make typecheck` checks it with mypy --strict and `disallow_any_expr` (pyproject.toml): no `Any` may leak from
the handler API; tests/unit/test_handler_api.py runs it.
"""

from __future__ import annotations

from gleaner import HandlerError, JobContext, JsonInput, Partial, PermanentError, Registry, RetryableError
from gleaner.testing import FakeHttp, Run, run_job, run_job_sync

registry = Registry()
SCHEMA: dict[str, JsonInput] = {
    "type": "object",
    "required": ["urls"],
    "properties": {"urls": {"type": "array", "items": {"type": "string", "format": "uri"}, "minItems": 1}},
}


@registry.handler("sample.sizes", queue="default", description="Sizes of pages.", schema=SCHEMA)
async def sizes(ctx: JobContext) -> JsonInput | Partial:
    urls = ctx.job.payload["urls"]
    if not isinstance(urls, list):
        raise PermanentError("urls must be a list", error_class="bad_payload")
    found: dict[str, int] = {}
    failed: list[str] = []
    for url in urls:
        try:
            page = await ctx.http.get(str(url), timeout_s=10)
        except HandlerError:
            failed.append(str(url))
            continue
        stored = await ctx.save_result(page, {"size": len(page.body)})
        found[page.url] = len(page.body) if not stored.unchanged else 0
        await ctx.progress({"done": len(found) + len(failed), "of": len(urls)})
        ctx.log.info("fetched %s from site %s", page.url, ctx.site.name if ctx.site else None)
    if failed and not found:
        raise RetryableError("every page failed")
    return Partial({"sizes": found, "failed": failed}) if failed else {"sizes": found}


@registry.handler("sample.count_rows", privileged=True)
async def count_rows(ctx: JobContext) -> JsonInput:
    """Counts jobs (a handler reading the database)."""
    count = await ctx.db.fetchval("SELECT count(*) FROM jobs")
    return {"jobs": count if isinstance(count, int) else None, "attempt": ctx.job.attempt}


def check_sizes() -> Run:
    http = FakeHttp({"https://a.example/": "four", "https://b.example/": b"bytes"})
    return run_job_sync(registry, "sample.sizes", {"urls": ["https://a.example/", "https://b.example/"]}, http=http)


async def check_partial() -> str:
    http = FakeHttp({"https://a.example/": "four"})
    run = await run_job(registry, "sample.sizes", {"urls": ["https://a.example/", "https://gone.example/"]}, http=http)
    return run.outcome
