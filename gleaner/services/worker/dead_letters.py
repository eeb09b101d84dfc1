"""Poison messages: record them with their raw body and headers; fail the job of an unknown kind.

Recording must work for any message a producer can send: header names and values are turned into JSON that
PostgreSQL's jsonb takes (no NUL characters, integers it can hold, bounded depth), and texts lose NUL too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from gleaner.shared.messages import JobMessage

UNDECODABLE = "undecodable"
UNKNOWN_KIND = "unknown_kind"
NO_SUCH_JOB = "no_such_job"
HANDLING_FAILED = "handling_failed"

# deeper header tables are kept as text; longer texts are cut
MAX_HEADER_DEPTH = 8
MAX_TEXT = 4000
JSON_INT = 2**63

RECORD = """
INSERT INTO dead_letters (queue, reason, detail, body, headers, job_id) VALUES ($1, $2, $3, $4, $5::jsonb, $6)
"""

# The dead letter and, if the job still waits for this attempt, its failure: one statement.
RECORD_UNKNOWN_KIND = """
WITH letter AS (
    INSERT INTO dead_letters (queue, reason, detail, body, headers, job_id)
    VALUES ($1, 'unknown_kind', $2, $3, $4::jsonb, $5)
)
UPDATE jobs SET state = 'failed', error = jsonb_build_object('class', 'unknown_kind', 'message', $2::text),
    finished_at = now(), updated_at = now()
WHERE id = $5 AND attempt = $6 - 1 AND state IN ('scheduled', 'queued', 'retrying')
RETURNING id
"""

# Only for a message whose claim found nothing (a duplicate or an outdated attempt, usually): poison if its job
# does not exist at all.
RECORD_IF_NO_JOB = f"""
INSERT INTO dead_letters (queue, reason, detail, body, headers, job_id)
SELECT $1, '{NO_SUCH_JOB}', $2, $3, $4::jsonb, $5
WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE id = $5)
RETURNING id
"""


def json_headers(headers: Mapping[Any, Any] | None) -> dict[str, Any]:
    """AMQP header values as JSON that jsonb stores: bytes decoded, tables and lists kept (to a depth), NUL
    characters written as `\\x00`, integers past 64 bits and anything else as text."""
    return _table(headers or {}, 0)


def _table(table: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    return {text(name): _json_value(value, depth + 1) for name, value in table.items()}


def _json_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if -JSON_INT <= value < JSON_INT else str(value)
    if isinstance(value, (bytes, bytearray)):
        return text(bytes(value).decode("utf-8", errors="replace"))
    if depth >= MAX_HEADER_DEPTH or not isinstance(value, (Mapping, list, tuple)):
        return text(value)
    if isinstance(value, Mapping):
        return _table(value, depth)
    return [_json_value(item, depth + 1) for item in value]


def text(value: Any) -> str:
    """Text PostgreSQL stores: NUL written out, bounded length."""
    raw = value if isinstance(value, str) else str(value)
    cleaned = raw.replace("\x00", "\\x00")
    return cleaned if len(cleaned) <= MAX_TEXT else cleaned[: MAX_TEXT - 1] + "…"


async def record(
    pool: asyncpg.Pool, queue: str, reason: str, detail: str, body: bytes, headers: Mapping[str, Any] | None
) -> None:
    """Record a poison message, body and headers as received."""
    await pool.execute(RECORD, queue, reason, text(detail), body, json_headers(headers), None)


async def record_unknown_kind(
    pool: asyncpg.Pool, queue: str, job: JobMessage, body: bytes, headers: Mapping[str, Any] | None
) -> bool:
    """Record the message and fail its job (fenced on the waiting attempt); True if the job was failed."""
    detail = text(f"no handler registered for kind {job.kind!r}")
    row = await pool.fetchrow(RECORD_UNKNOWN_KIND, queue, detail, body, json_headers(headers), job.job_id, job.attempt)
    return row is not None


async def record_if_no_job(
    pool: asyncpg.Pool, queue: str, job: JobMessage, body: bytes, headers: Mapping[str, Any] | None
) -> bool:
    """Record the message as `no_such_job` if its job does not exist; True if it was recorded."""
    detail = f"no job {job.job_id} (attempt {job.attempt} of kind {job.kind!r})"
    row = await pool.fetchrow(RECORD_IF_NO_JOB, queue, text(detail), body, json_headers(headers), job.job_id)
    return row is not None
