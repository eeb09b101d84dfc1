"""Scrape results: one `scrape_results` row per fetched page, bodies stored once per content hash."""

from __future__ import annotations

import asyncpg

from gleaner.job_context import HttpResponse, JobContext, StoredResult
from gleaner.json_types import JsonInput

__all__ = ["ResultStore", "StoredResult"]

# One statement: the body goes in once per hash; `unchanged` compares with the URL's previous result. A 304
# ($11) is the previous copy again: its hash, `unchanged`, no body, and the previous size counted as saved.
SAVE_RESULT = """
WITH previous AS (
    SELECT content_hash, size, etag, last_modified FROM scrape_results WHERE url = $3 AND NOT blocked_by_robots
    ORDER BY fetched_at DESC, id DESC LIMIT 1
), body AS (
    INSERT INTO scrape_bodies (content_hash, body) SELECT $8, $9::bytea WHERE $9::bytea IS NOT NULL AND NOT $11
    ON CONFLICT (content_hash) DO NOTHING
), saved AS (
    UPDATE sites SET bytes_saved = bytes_saved + (SELECT size FROM previous)
    WHERE $11 AND name = $2 AND EXISTS (SELECT FROM previous)
)
INSERT INTO scrape_results (job_id, site, url, final_url, status, content_type, size, content_hash, body_hash,
                            data, unchanged, etag, last_modified)
SELECT $1, $2, $3, $4, $5, $6, $7,
       CASE WHEN $11 THEN COALESCE((SELECT content_hash FROM previous), $8) ELSE $8 END,
       CASE WHEN $9::bytea IS NULL OR $11 THEN NULL ELSE $8 END, $10::jsonb,
       $11 OR COALESCE((SELECT content_hash FROM previous) = $8, false),
       CASE WHEN $11 THEN COALESCE($12, (SELECT etag FROM previous)) ELSE $12 END,
       CASE WHEN $11 THEN COALESCE($13, (SELECT last_modified FROM previous)) ELSE $13 END
RETURNING id, unchanged
"""
# a URL robots.txt disallows: recorded (so a re-run skips it too), never requested
SAVE_BLOCKED = """
INSERT INTO scrape_results (job_id, site, url, status, size, content_hash, blocked_by_robots)
VALUES ($1, $2, $3, 0, 0, '', true)
RETURNING id
"""
# what a later fetch of the URL sends back (If-None-Match / If-Modified-Since)
VALIDATORS = """
SELECT etag, last_modified FROM scrape_results WHERE url = $1 AND NOT blocked_by_robots
ORDER BY fetched_at DESC, id DESC LIMIT 1
"""

DONE_URLS = "SELECT url, bool_and(blocked_by_robots) AS blocked FROM scrape_results WHERE job_id = $1 GROUP BY url"


class ResultStore:
    """Stores the pages of one job (the context's `save_result` calls this)."""

    def __init__(self, pool: asyncpg.Pool, job_id: int, site: str | None) -> None:
        self.pool = pool
        self.job_id = job_id
        self.site = site

    async def save(
        self, response: HttpResponse, data: JsonInput = None, *, keep_body: bool = True, url: str | None = None
    ) -> StoredResult:
        """Store `response` (as fetched from `url`, default its own) with the extracted `data` (JSON)."""
        requested = url or response.requested_url or response.url
        record = await self.pool.fetchrow(
            SAVE_RESULT,
            self.job_id,
            self.site,
            requested,
            response.url,
            response.status,
            response.content_type,
            len(response.body),
            response.sha256,
            response.body if keep_body else None,
            data,
            response.not_modified,
            response.etag,
            response.last_modified,
        )
        assert record is not None
        return StoredResult(record["id"], record["unchanged"])

    async def save_blocked(self, url: str) -> int:
        """Record that robots.txt disallows `url` (a page result `blocked_by_robots`, not a failure)."""
        result_id: int = await self.pool.fetchval(SAVE_BLOCKED, self.job_id, self.site, url)
        return result_id

    async def conditional_headers(self, url: str) -> dict[str, str]:
        """If-None-Match / If-Modified-Since from the URL's last result: a 304 then saves its body's transfer."""
        row = await self.pool.fetchrow(VALIDATORS, url)
        headers = {}
        if row is not None and row["etag"]:
            headers["If-None-Match"] = row["etag"]
        if row is not None and row["last_modified"]:
            headers["If-Modified-Since"] = row["last_modified"]
        return headers

    async def done_urls(self) -> dict[str, bool]:
        """URLs this job stored already (in an earlier attempt, or before it was deferred), each with whether
        robots.txt blocked it: a re-run resumes and counts them as before."""
        return {r["url"]: r["blocked"] for r in await self.pool.fetch(DONE_URLS, self.job_id)}


async def conditional_headers(ctx: JobContext, url: str) -> dict[str, str] | None:
    """The validators a handler sends with `url` when its job stores results (ctx is a JobContext)."""
    return await ctx.results.conditional_headers(url) if ctx.results is not None else None


async def save_blocked(ctx: JobContext, url: str) -> int | None:
    """Record `url` as blocked by robots.txt for the job of `ctx`, when it stores results."""
    return await ctx.results.save_blocked(url) if ctx.results is not None else None
