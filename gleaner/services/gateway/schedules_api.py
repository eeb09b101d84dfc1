"""Handlers for /schedules: create, list, read, replace, edit, delete, pause, resume, trigger, preview."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from gleaner.services.gateway import job_store
from gleaner.services.gateway.bodies import id_param, query_value, read_json
from gleaner.services.gateway.context import Gateway, gateway_of
from gleaner.services.gateway.job_views import job_view, json_response
from gleaner.services.gateway.jobs_api import announce, is_admin
from gleaner.services.gateway.schedule_views import preview_view, schedule_view
from gleaner.shared import events
from gleaner.shared.errors import Problem, ValidationProblem, field_error
from gleaner.shared.field_checks import query_integer
from gleaner.shared.scheduling import definitions, planner, schedule_store
from gleaner.shared.scheduling.firing import fire_manual
from gleaner.shared.scheduling.schedule_rows import spec_of
from gleaner.shared.submission import kind_names, refuse_privileged, template_check

API = "/api/v1"
MAX_PREVIEW = 100
# PATCH: giving another timing field than the current one replaces it
TIMING = ("interval_s", "cron", "at")


async def schedule_id_param(request: web.Request) -> int:
    """The schedule `{id}` of the path names: digits are its id, anything else its name (names are never all
    digits); 404 when no schedule has that name."""
    segment = request.match_info["id"]
    if segment.isascii() and segment.isdigit():
        return id_param(request, "schedule")
    if definitions.NAME.fullmatch(segment) is None:
        raise not_found(segment)
    async with gateway_of(request).pool.acquire() as connection:
        found: int | None = await connection.fetchval(schedule_store.ID_BY_NAME, segment)
    if found is None:
        raise not_found(segment)
    return found


def not_found(schedule: int | str) -> Problem:
    if isinstance(schedule, int):
        return Problem(404, "Not Found", f"schedule {schedule} does not exist")
    return Problem(404, "Not Found", f"no schedule is named {schedule!r}")


def name_taken(name: str) -> Problem:
    message = f"a schedule named {name!r} exists already"
    return Problem(409, "Conflict", message, errors=[field_error("name", message)])


async def parse_definition(gw: Gateway, body: Any) -> definitions.Definition:
    """A 422 naming every bad field, the job template checked like a submission (kinds, queues, payloads); a
    privileged template kind is a 403 without `admin` (every schedule change needs it today: defence in depth)."""
    job = body.get("job") if isinstance(body, dict) else None
    kinds = await gw.kinds.knowing(kind_names(job))
    refuse_privileged(job, kinds, is_admin())
    return definitions.parse(body, template_check(gw.config, kinds), anchor=datetime.now(UTC))


async def _existing(gw: Gateway, schedule_id: int) -> asyncpg.Record:
    async with gw.pool.acquire() as connection:
        row = await schedule_store.get(connection, schedule_id)
    if row is None:
        raise not_found(schedule_id)
    return row


async def _view(gw: Gateway, schedule_id: int, status: int = 200) -> web.Response:
    row = await _existing(gw, schedule_id)
    headers = {"Location": f"{API}/schedules/{schedule_id}"} if status == 201 else None
    return json_response(schedule_view(row), status, headers)


async def create_schedule(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    _, body = await read_json(request)
    definition = await parse_definition(gw, body)
    try:
        async with gw.pool.acquire() as connection, connection.transaction():
            schedule_id = await schedule_store.create(connection, definition)
    except asyncpg.UniqueViolationError:
        raise name_taken(definition.name) from None
    return await _view(gw, schedule_id, 201)


async def list_schedules(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    limit = query_value(request, "page_size", query_integer(1, 1000)) or 100
    after = query_value(request, "after_id", query_integer(0, 2**63 - 1), "must be a schedule id") or 0
    async with gw.pool.acquire() as connection:
        rows = await schedule_store.list_all(connection, after_id=after, limit=limit + 1)
    page = rows[:limit]
    next_after = page[-1]["id"] if len(rows) > limit else None
    return json_response({"schedules": [schedule_view(r) for r in page], "next_after_id": next_after})


async def get_schedule(request: web.Request) -> web.Response:
    return await _view(gateway_of(request), await schedule_id_param(request))


async def replace_schedule(request: web.Request) -> web.Response:
    """PUT: the whole definition; a timing change restarts the slots from now, the leader is woken at once."""
    gw = gateway_of(request)
    schedule_id = await schedule_id_param(request)
    _, body = await read_json(request)
    return await _replace(gw, schedule_id, lambda _row: body)


async def edit_schedule(request: web.Request) -> web.Response:
    """PATCH: the given fields over the current definition (`job` is replaced whole)."""
    gw = gateway_of(request)
    schedule_id = await schedule_id_param(request)
    _, patch = await read_json(request)
    if not isinstance(patch, dict):
        raise ValidationProblem([field_error("body", "must be a JSON object")])
    return await _replace(gw, schedule_id, lambda row: merged(definition_body(row), patch))


async def _replace(gw: Gateway, schedule_id: int, body_of: Callable[[asyncpg.Record], Any]) -> web.Response:
    async with gw.pool.acquire() as connection, connection.transaction():
        current = await schedule_store.get_locked(connection, schedule_id)
        if current is None:
            raise not_found(schedule_id)
        definition = await parse_definition(gw, body_of(current))
        try:
            # an API edit keeps the schedule's owner: a file-managed one is still the file's to update or disable
            await schedule_store.replace(connection, current, definition, current["source"])
        except asyncpg.UniqueViolationError:
            raise name_taken(definition.name) from None
    return await _view(gw, schedule_id)


def definition_body(row: Any) -> dict[str, Any]:
    """The stored definition in the shape POST and PUT take."""
    timing: dict[str, Any] = {
        "interval": {"interval_s": row["interval_s"], "jitter": row["jitter"]},
        "cron": {"cron": row["cron"], "timezone": row["timezone"]},
        "once": {"at": row["at"].isoformat() if row["at"] is not None else None},
    }[row["kind"]]
    policies = {key: row[key] for key in definitions.POLICY_FIELDS}
    return {"name": row["name"], **timing, "job": row["job"], **policies}


def merged(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Switching to another timing field drops the old one and its companions (jitter, timezone)."""
    if any(patch.get(key) is not None and current.get(key) is None for key in TIMING):
        current = {key: value for key, value in current.items() if key not in (*TIMING, "jitter", "timezone")}
    return current | patch


async def delete_schedule(request: web.Request) -> web.Response:
    """Its jobs stay (their schedule_id becomes null)."""
    gw = gateway_of(request)
    schedule_id = await schedule_id_param(request)
    async with gw.pool.acquire() as connection:
        if not await schedule_store.delete(connection, schedule_id):
            raise not_found(schedule_id)
    return web.Response(status=204)


async def pause_schedule(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    schedule_id = await schedule_id_param(request)
    async with gw.pool.acquire() as connection:
        if not await schedule_store.pause(connection, schedule_id):
            raise not_found(schedule_id)
    return await _view(gw, schedule_id)


async def resume_schedule(request: web.Request) -> web.Response:
    """Slots missed while paused: `fire_once` fires one catch-up job, `skip` counts them and fires none."""
    gw = gateway_of(request)
    schedule_id = await schedule_id_param(request)
    async with gw.pool.acquire() as connection, connection.transaction():
        row = await schedule_store.get_locked(connection, schedule_id)
        if row is None:
            raise not_found(schedule_id)
        if row["paused"]:
            await schedule_store.resume(connection, row)
    return await _view(gw, schedule_id)


async def trigger_schedule(request: web.Request) -> web.Response:
    """One job now (trigger `manual`), whatever the schedule's pause, overlap policy or the scheduler's pause.

    A fan-out schedule creates one job per value; the answer shows the first (GET /jobs?schedule_id= lists all).
    """
    gw = gateway_of(request)
    schedule_id = await schedule_id_param(request)
    inserted = await fire_manual(gw.pool, gw.config, schedule_id)
    if inserted is None:
        raise not_found(schedule_id)
    gw.publisher.add(inserted)
    announce(gw, inserted, events.FIRED)
    job = await job_store.get_job(gw.pool, inserted[0]["id"])
    assert job is not None, "the job committed just now"
    return json_response(job_view(job), 202, headers={"Location": f"{API}/jobs/{inserted[0]['id']}"})


async def preview_schedule(request: web.Request) -> web.Response:
    """The next `count` nominal fire times from now (interval jitter moves each by up to ±jitter·interval)."""
    gw = gateway_of(request)
    schedule_id = await schedule_id_param(request)
    count = query_value(request, "count", query_integer(1, MAX_PREVIEW))
    async with gw.pool.acquire() as connection:
        row = await schedule_store.get(connection, schedule_id)
        now = await schedule_store.database_now(connection)
    if row is None:
        raise not_found(schedule_id)
    slots = planner.preview(spec_of(dict(row)), now, count or 10) if row["enabled"] else []
    return json_response(preview_view(row, slots))
