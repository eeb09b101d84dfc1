"""Scrape results: one `scrape_results` row per fetched page, bodies stored once per content hash."""

from __future__ import annotations

import asyncpg

from gleaner.job_context import HttpResponse, StoredResult
from gleaner.json_types import JsonInput

__all__ = ["ResultStore", "StoredResult"]

# One statement: the body goes in once per hash; `unchanged` compares with the URL's previous result.
SAVE_RESULT = """
WITH previous AS (
    SELECT content_hash FROM scrape_results WHERE url = $3 ORDER BY fetched_at DESC, id DESC LIMIT 1
), body AS (
    INSERT INTO scrape_bodies (content_hash, body) SELECT $8, $9::bytea WHERE $9::bytea IS NOT NULL
    ON CONFLICT (content_hash) DO NOTHING
)
INSERT INTO scrape_results (job_id, site, url, final_url, status, content_type, size, content_hash, body_hash,
                            data, unchanged)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9::bytea IS NULL THEN NULL ELSE $8 END, $10::jsonb,
       COALESCE((SELECT content_hash FROM previous) = $8, false)
RETURNING id, unchanged
"""

DONE_URLS = "SELECT DISTINCT url FROM scrape_results WHERE job_id = $1"


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
        )
        assert record is not None
        return StoredResult(record["id"], record["unchanged"])

    async def done_urls(self) -> set[str]:
        """URLs this job stored already (in an earlier attempt, or before it was deferred): a re-run resumes."""
        return {r["url"] for r in await self.pool.fetch(DONE_URLS, self.job_id)}
