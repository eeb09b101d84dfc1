"""A handler that logs with seed 000's fields in `extra` (`--handlers tests.support.log_fields`)."""

from __future__ import annotations

from gleaner import JobContext, JsonInput, Registry

registry = Registry()


@registry.handler("log.fields")
async def log_fields(ctx: JobContext) -> JsonInput:
    """Logs one line with the handler's own fields, one that reuses a LogRecord attribute name, and a debug line."""
    ctx.log.info("page scraped", extra={"site_name": "indeed", "run_id": "r-1", "event": "page", "status": 200})
    ctx.log.info("renamed", extra={"name": "kept as extra_name"})
    ctx.log.debug("parser detail", extra={"selector": "h2.job-title"})
    return {"ok": True}
