"""Poison messages: record them with their raw body and headers; fail the job of an unknown kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from shared.messages import JobMessage

UNDECODABLE = "undecodable"
UNKNOWN_KIND = "unknown_kind"

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


def json_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """AMQP header values as JSON: bytes decoded, nested tables and lists kept, anything else as text."""
    return {str(name): _json_value(value) for name, value in (headers or {}).items()}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return json_headers(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return str(value)


async def record_undecodable(
    pool: asyncpg.Pool, queue: str, detail: str, body: bytes, headers: Mapping[str, Any] | None
) -> None:
    await pool.execute(RECORD, queue, UNDECODABLE, detail, body, json_headers(headers), None)


async def record_unknown_kind(
    pool: asyncpg.Pool, queue: str, job: JobMessage, body: bytes, headers: Mapping[str, Any] | None
) -> bool:
    """Record the message and fail its job (fenced on the waiting attempt); True if the job was failed."""
    detail = f"no handler registered for kind {job.kind!r}"
    row = await pool.fetchrow(RECORD_UNKNOWN_KIND, queue, detail, body, json_headers(headers), job.job_id, job.attempt)
    return row is not None
