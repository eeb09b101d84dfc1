"""Handlers for /dead-letters: failed jobs (`job-<id>`) and poison messages (`message-<id>`)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from aiohttp import web

from gleaner.services.gateway.bodies import checked, query_choice, query_value, read_json
from gleaner.services.gateway.context import Gateway, gateway_of
from gleaner.services.gateway.job_store import RETURNING
from gleaner.services.gateway.job_views import failed_job_letter, job_view, json_response, message_letter
from gleaner.services.gateway.jobs_api import announce, requeue_finished
from gleaner.shared.errors import DecodeError, Problem
from gleaner.shared.field_checks import integer, members, query_boolean, query_integer, string
from gleaner.shared.messages import JobMessage
from gleaner.shared.requeue import DEDUPE_FREE, REQUEUE_SET

LETTER_ID = re.compile(r"^(job|message)-([1-9][0-9]{0,18})$")
MAX_BULK = 10_000

# $4: list the resolved letters instead of the open ones
FAILED_JOBS = """
SELECT id, kind, queue, site, payload, error, attempt, max_attempts, finished_at, resolved_at, resolution FROM jobs
WHERE state = 'failed' AND ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR queue = $2)
  AND (resolved_at IS NOT NULL) = $4
ORDER BY id DESC LIMIT $3
"""
MESSAGES = """
SELECT * FROM dead_letters WHERE ($1::text IS NULL OR queue = $1) AND (resolved_at IS NOT NULL) = $3
ORDER BY id DESC LIMIT $2
"""
RESOLVE_JOB = """
UPDATE jobs SET resolved_at = now(), resolution = $2, updated_at = now()
WHERE id = $1 AND state = 'failed' RETURNING id
"""
RESOLVE_MESSAGE = "UPDATE dead_letters SET resolved_at = now(), resolution = $2 WHERE id = $1 RETURNING id"
MAX_NOTE = 1000
# the body is empty or {"note": "<text>"}
RESOLVE_BODY = members({"note": string(MAX_NOTE)})
BULK_FILTERS = members(
    {"kind": string(200), "queue": string(200), "error_class": string(200), "limit": integer(1, MAX_BULK)}
)
MESSAGE = "SELECT * FROM dead_letters WHERE id = $1"
DELETE_MESSAGE = "DELETE FROM dead_letters WHERE id = $1 RETURNING id"
DELETE_FAILED_JOB = "DELETE FROM jobs WHERE id = $1 AND state = 'failed' RETURNING id"
JOB_STATE = "SELECT state FROM jobs WHERE id = $1"

# failed rows matching the filters, skipping any whose dedupe key an unfinished job holds now
BULK_REQUEUE = f"""
WITH picked AS (
    SELECT id FROM jobs AS f
    WHERE state = 'failed' AND resolved_at IS NULL AND ($1::text IS NULL OR kind = $1)
      AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR error->>'class' = $3)
      AND {DEDUPE_FREE}
    ORDER BY id LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs AS j SET {REQUEUE_SET}
FROM picked WHERE j.id = picked.id AND j.state = 'failed'
RETURNING {RETURNING}
"""


def parse_letter_id(raw: str) -> tuple[str, int]:
    match = LETTER_ID.fullmatch(raw)
    if match is None:
        raise Problem(404, "Not Found", "dead letter ids look like job-<id> or message-<id>")
    return match.group(1), int(match.group(2))


async def list_dead_letters(request: web.Request) -> web.Response:
    """Newest first; `kind` filters failed jobs only (poison messages have no trustworthy kind)."""
    gw = gateway_of(request)
    kind, queue = request.query.get("kind") or None, request.query.get("queue") or None
    letter_type = query_choice(request, "type", ("job", "message"))
    limit = query_value(request, "limit", query_integer(1, 1000)) or 100
    resolved = query_value(request, "resolved", query_boolean) or False
    letters: list[tuple[Any, dict[str, Any]]] = []
    if letter_type in (None, "job"):
        rows = await gw.pool.fetch(FAILED_JOBS, kind, queue, limit, resolved)
        letters += [(r["finished_at"], failed_job_letter(r)) for r in rows]
    if letter_type in (None, "message") and kind is None:
        rows = await gw.pool.fetch(MESSAGES, queue, limit, resolved)
        letters += [(r["created_at"], message_letter(r)) for r in rows]
    letters.sort(key=lambda pair: (pair[0] is not None, pair[0]), reverse=True)
    return json_response({"dead_letters": [letter for _, letter in letters[:limit]]})


async def requeue_letter(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    letter_type, number = parse_letter_id(request.match_info["id"])
    job_id = number if letter_type == "job" else await _job_of_message(gw, number)
    row = await requeue_finished(gw, job_id)
    if letter_type == "message":
        await gw.pool.execute(DELETE_MESSAGE, number)
    return json_response(job_view(row), 202)


async def _job_of_message(gw: Gateway, message_id: int) -> int:
    """The failed job a poison message names, or 409: a message without a failed job cannot be requeued."""
    row = await gw.pool.fetchrow(MESSAGE, message_id)
    if row is None:
        raise Problem(404, "Not Found", f"dead letter message-{message_id} does not exist")
    try:
        job_id = JobMessage.decode(bytes(row["body"])).job_id
    except DecodeError:
        raise Problem(409, "Conflict", "cannot requeue a poison message: its body is not a job message") from None
    if await gw.pool.fetchval(JOB_STATE, job_id) != "failed":
        raise Problem(409, "Conflict", f"cannot requeue a poison message: job {job_id} is missing or not failed")
    return job_id


async def bulk_requeue(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    _, data = await read_json(request, allow_empty=True)
    kind, queue, error_class, limit = _bulk_filters(data)
    rows = await gw.pool.fetch(BULK_REQUEUE, kind, queue, error_class, limit)
    gw.publisher.add(rows)
    announce(gw, rows)
    return json_response({"requeued": len(rows)})


def _bulk_filters(data: Any) -> tuple[str | None, str | None, str | None, int]:
    body = checked(data, BULK_FILTERS)
    limit = body.get("limit")
    # int(): a limit of 1000.0 passed the integer check (JSON Schema's integers) but is a float in the body
    return body.get("kind"), body.get("queue"), body.get("error_class"), 1000 if limit is None else int(limit)


async def resolve_letter(request: web.Request) -> web.Response:
    """Take a dead letter off the list, keeping it (`?resolved=true` lists it), with an optional note."""
    gw = gateway_of(request)
    letter_type, number = parse_letter_id(request.match_info["id"])
    _, body = await read_json(request, allow_empty=True)
    note = checked(body, RESOLVE_BODY).get("note")
    statement = RESOLVE_JOB if letter_type == "job" else RESOLVE_MESSAGE
    if await gw.pool.fetchval(statement, number, note) is None:
        if letter_type == "job":
            await _missing_or_not_failed(gw.pool, number)
        raise Problem(404, "Not Found", f"dead letter message-{number} does not exist")
    return web.Response(status=204)


async def delete_letter(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    letter_type, number = parse_letter_id(request.match_info["id"])
    if letter_type == "message":
        if await gw.pool.fetchval(DELETE_MESSAGE, number) is None:
            raise Problem(404, "Not Found", f"dead letter message-{number} does not exist")
        return web.Response(status=204)
    if await gw.pool.fetchval(DELETE_FAILED_JOB, number) is None:
        await _missing_or_not_failed(gw.pool, number)
    return web.Response(status=204)


async def _missing_or_not_failed(pool: asyncpg.Pool, job_id: int) -> None:
    state = await pool.fetchval(JOB_STATE, job_id)
    if state is None:
        raise Problem(404, "Not Found", f"dead letter job-{job_id} does not exist")
    raise Problem(409, "Conflict", f"job {job_id} is {state}, not a dead letter")
