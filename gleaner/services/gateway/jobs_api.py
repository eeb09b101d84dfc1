"""Handlers for /jobs: submit (one, batch), read (with ?wait), list, attempts, cancel, retry."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime
from operator import attrgetter

import asyncpg
from aiohttp import web

from gleaner.services.gateway import idempotency, job_store
from gleaner.services.gateway.auth import ADMIN, current_principal
from gleaner.services.gateway.bodies import (
    job_id_param,
    query_choice,
    query_value,
    read_json,
)
from gleaner.services.gateway.context import Gateway, gateway_of
from gleaner.services.gateway.event_hub import WAKING
from gleaner.services.gateway.job_store import ListFilters, NewJob
from gleaner.services.gateway.job_views import (
    FINAL_STATES,
    STATES,
    WAITING_STATES,
    View,
    attempt_view,
    job_view,
    json_response,
    submitted_json,
    submitted_view,
)
from gleaner.services.gateway.payload_filter import next_after, payload_containment, scan_floor
from gleaner.services.gateway.waiting import POLL_S
from gleaner.shared import events
from gleaner.shared import logging as gleaner_logging
from gleaner.shared.db import Connection
from gleaner.shared.errors import Problem, field_error
from gleaner.shared.field_checks import parse_timestamp, query_boolean, query_integer, query_number
from gleaner.shared.submission import (
    JobSpec,
    kind_names,
    parse_batch,
    parse_change,
    parse_one,
    parse_then,
    refuse_privileged,
)

API = "/api/v1"
_KIND_AND_QUEUE = attrgetter("kind", "queue")
MAX_WAIT_S = 60.0


class _Raced(Exception):
    """A concurrent request with the same Idempotency-Key committed first."""


def not_found(job_id: int) -> Problem:
    return Problem(404, "Not Found", f"job {job_id} does not exist")


def dedupe_conflict(field: str, key: str | None, holder: int | None) -> Problem:
    held = f"job {holder}" if holder is not None else "an unfinished job"
    message = f"dedupe key {key!r} is held by {held}"
    return Problem(409, "Conflict", message, errors=[field_error(field, message)])


def is_admin() -> bool:
    principal = current_principal.get()
    return principal is not None and principal.allows(ADMIN)


async def submit(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    raw, data = await read_json(request)
    kinds = await gw.kinds.knowing(kind_names(data))
    refuse_privileged(data, kinds, is_admin())
    spec = parse_one(data, gw.config, kinds, gw.checks.of(kinds))
    items = [NewJob(spec, gleaner_logging.request_id.get())]
    views, status = await _insert(request, gw, raw, items, single=True)
    body = views[0]
    assert isinstance(body, dict), "one job is shown as a dict"
    return json_response(body, status, headers={"Location": f"{API}/jobs/{body['id']}"})


async def submit_batch(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    raw, data = await read_json(request)
    kinds = await gw.kinds.knowing(kind_names(data))
    refuse_privileged(data, kinds, is_admin())
    specs = parse_batch(data, gw.config, kinds, gw.checks.of(kinds))
    then = parse_then(data, gw.config, kinds)
    request_id = gleaner_logging.request_id.get()
    items = [NewJob(spec, request_id) for spec in specs]
    views, status = await _insert(
        request, gw, raw, items, single=False, then=NewJob(then, request_id) if then is not None else None
    )
    if then is None:
        return json_response({"jobs": views}, status)
    return json_response({"jobs": views[:-1], "then": views[-1]}, status)


async def _insert(
    request: web.Request, gw: Gateway, raw: bytes, items: list[NewJob], *, single: bool, then: NewJob | None = None
) -> tuple[list[View], int]:
    """The jobs as the response shows them (a batch's `then` callback last) and the status; a job with
    dependencies takes a transaction of its own, plain single submissions the group-commit lanes."""
    key = request.headers.get(idempotency.HEADER)
    if key is not None:
        principal = current_principal.get()
        assert principal is not None, "the auth middleware runs first"
        digest = idempotency.request_hash(request.method, request.path, raw)
        return await _insert_idempotent(
            gw, principal.name, idempotency.check_key(key), digest, items, then, single=single
        )
    lane = single and not job_store.links_of(items)
    if lane:
        row = await gw.inserts.submit(items[0])  # the lane hands its statement's rows to the publisher
        if row is None:
            await _raise_conflicts(gw, items, [None])
        rows = [row] if row is not None else []
    else:
        async with gw.pool.acquire() as connection, _atomic(connection, items, then):
            rows = await _insert_all(gw, connection, items, then)
    _committed(gw, [s.spec for s in items], rows, published=lane)
    return _shown(items, then, rows, single=single), 202


def _atomic(
    connection: Connection, items: Sequence[NewJob], then: NewJob | None
) -> AbstractAsyncContextManager[object]:
    """A transaction for the statements of a submission, unless it is one INSERT that cannot conflict (plain jobs
    without dedupe keys): that one is atomic on its own, and BEGIN and COMMIT were two more round trips and 0.4 µs
    of the gateway's CPU a job of a 1,000-job batch (py-spy). A dedupe conflict must roll the whole batch back."""
    if then is None and not job_store.links_of(items) and all(item.spec.dedupe_key is None for item in items):
        return nullcontext()
    return connection.transaction()


async def _insert_all(
    gw: Gateway, connection: Connection, items: list[NewJob], then: NewJob | None
) -> list[asyncpg.Record]:
    results = await job_store.insert_linked(connection, items, then)
    rows = await _raise_conflicts(gw, items, results[: len(items)])
    callback = results[len(items) :]
    return rows + [r for r in callback if r is not None]


async def _raise_conflicts(
    gw: Gateway, items: Sequence[NewJob], results: Sequence[asyncpg.Record | None]
) -> list[asyncpg.Record]:
    """All rows, or a 409 naming the first item whose dedupe key is taken (its transaction rolls back)."""
    for index, (item, row) in enumerate(zip(items, results, strict=True)):
        if row is None:
            key = item.spec.dedupe_key
            holder = await job_store.dedupe_holder(gw.pool, key) if key is not None else None
            field = "dedupe_key" if len(items) == 1 else f"jobs[{index}].dedupe_key"
            raise dedupe_conflict(field, key, holder)
    return [row for row in results if row is not None]


def _shown(items: Sequence[NewJob], then: NewJob | None, rows: Sequence[asyncpg.Record], *, single: bool) -> list[View]:
    """New rows as the response shows them: plain ones from their submission (a batch's already written as JSON),
    linked ones (re-read whole by `insert_linked`: a link may block or cancel a job, or fill a callback's payload)
    as stored."""
    if then is not None or job_store.links_of(items):
        return [job_view(row) for row in rows]
    if not single:
        return list(submitted_json([item.spec for item in items], rows))
    return [submitted_view(item.spec, row) for item, row in zip(items, rows, strict=True)]


def announce(gw: Gateway, rows: Sequence[asyncpg.Record], route: str = events.SUBMITTED) -> None:
    """After a commit, in the background: tell streams and webhooks about new (or requeued) waiting jobs."""
    if rows:
        at = events.stamp()
        fired = route == events.FIRED
        made = [events.fired_event(r, at) for r in rows] if fired else events.job_events(rows, at, route)
        gw.announcer.add(route, made)


def _committed(
    gw: Gateway, specs: Sequence[JobSpec], rows: Sequence[asyncpg.Record], *, published: bool = False
) -> None:
    """Blocked jobs (and jobs cancelled by a failed dependency) get no message: a release publishes them.

    The rows of one statement go to the publisher in one call (`published`: the insert lane did that already).
    """
    if not published:
        gw.publisher.add([r for r in rows if r["state"] in WAITING_STATES])
    announce(gw, rows)
    for (kind, queue), count in Counter(map(_KIND_AND_QUEUE, specs)).items():
        gw.metrics.submitted.labels(kind, queue).inc(count)


async def _insert_idempotent(
    gw: Gateway, principal: str, key: str, digest: str, items: list[NewJob], then: NewJob | None, *, single: bool
) -> tuple[list[View], int]:
    for _ in range(2):
        recorded = await idempotency.lookup(gw.pool, principal, key, digest)
        if recorded is not None:
            return [job_view(row) for row in await job_store.get_jobs(gw.pool, recorded.job_ids)], recorded.status
        try:
            async with gw.pool.acquire() as connection, connection.transaction():
                rows = await _insert_all(gw, connection, items, then)
                outcome = idempotency.Recorded([r["id"] for r in rows], 202)
                if not await idempotency.store(connection, principal, key, digest, outcome):
                    raise _Raced
        except _Raced:
            continue
        _committed(gw, [i.spec for i in items], rows)
        return _shown(items, then, rows, single=single), 202
    raise Problem(409, "Conflict", "a concurrent request with this Idempotency-Key is in progress")


async def get_job(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    job_id = job_id_param(request)
    wait_s = query_value(request, "wait", query_number(0, MAX_WAIT_S, exclusive_low=True), "must be in (0, 60]")
    row = await job_store.get_job(gw.pool, job_id)
    if row is None:
        raise not_found(job_id)
    if wait_s is not None and row["state"] not in FINAL_STATES:
        row = await _wait_final(gw, job_id, row, time.monotonic() + wait_s)
    return json_response(job_view(row))


async def _wait_final(gw: Gateway, job_id: int, row: asyncpg.Record, deadline: float) -> asyncpg.Record:
    """Woken by `job.finished` events, polling every second in case one is missed; always re-reads the row (first
    once the hub had to start listening for finishes: one may have gone unheard since the row was read)."""
    if await gw.events.listen(WAKING):
        row = await job_store.get_job(gw.pool, job_id) or row
    while row["state"] not in FINAL_STATES:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await gw.waiters.wait(job_id, min(left, POLL_S))
        fresh = await job_store.get_job(gw.pool, job_id)
        if fresh is None:
            break
        row = fresh
    return row


def _filters(request: web.Request) -> ListFilters:
    state = query_choice(request, "state", STATES)

    def timestamp(name: str) -> datetime | None:
        return query_value(request, name, parse_timestamp)

    return ListFilters(
        state=state,
        kind=request.query.get("kind") or None,
        queue=request.query.get("queue") or None,
        site=request.query.get("site") or None,
        schedule_id=query_value(request, "schedule_id", query_integer(1, 2**63 - 1), "must be a positive integer"),
        parent_id=query_value(request, "parent_id", query_integer(1, 2**63 - 1), "must be a positive integer"),
        created_after=timestamp("created_after"),
        created_before=timestamp("created_before"),
        updated_after=timestamp("updated_after"),
        payload=payload_containment(request.query),
    )


async def list_jobs(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    filters = _filters(request)
    page_size = query_value(request, "page_size", query_integer(1, 500)) or 50
    token = request.query.get("page_token") or None
    after_id = gw.page_tokens.decode(token, filters.as_dict()) if token is not None else None
    floor = None
    if filters.payload is not None:
        floor = scan_floor(after_id - 1 if after_id is not None else await job_store.newest_id(gw.pool))
    rows = await job_store.list_page(gw.pool, filters, after_id, page_size + 1, floor)
    page = rows[:page_size]
    after = next_after(page[-1]["id"] if page else None, len(rows) > page_size, floor)
    next_token = gw.page_tokens.encode(after, filters.as_dict()) if after is not None else None
    return json_response({"jobs": [job_view(r) for r in page], "next_page_token": next_token})


async def list_attempts(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    job_id = job_id_param(request)
    rows = await job_store.attempts(gw.pool, job_id)
    if not rows and await job_store.get_job(gw.pool, job_id) is None:
        raise not_found(job_id)
    return json_response({"attempts": [attempt_view(r) for r in rows]})


async def list_children(request: web.Request) -> web.Response:
    """The jobs the job's handler submitted (ctx.submit), newest first."""
    return await _related(request, "children", job_store.children)


async def list_dependencies(request: web.Request) -> web.Response:
    """The jobs the job waits (or waited) for, newest first: those it named and, for a job waiting for a tree,
    their children; `dependency_outcome` is the state each ended in (null: not ended yet)."""
    return await _related(request, "dependencies", job_store.dependencies)


Related = Callable[[asyncpg.Pool, int, int | None, int], Awaitable[list[asyncpg.Record]]]


async def _related(request: web.Request, name: str, read: Related) -> web.Response:
    gw = gateway_of(request)
    job_id = job_id_param(request)
    page_size = query_value(request, "page_size", query_integer(1, 500)) or 50
    token = request.query.get("page_token") or None
    scope = {name: job_id}
    before = gw.page_tokens.decode(token, scope) if token is not None else None
    rows = await read(gw.pool, job_id, before, page_size + 1)
    if not rows and await job_store.get_job(gw.pool, job_id) is None:
        raise not_found(job_id)
    page = rows[:page_size]
    more = len(rows) > page_size
    views = [_related_view(r, name) for r in page]
    next_token = gw.page_tokens.encode(page[-1]["id"], scope) if more and page else None
    return json_response({"jobs": views, "next_page_token": next_token})


def _related_view(row: asyncpg.Record, name: str) -> dict[str, object]:
    view = job_view(row)
    return view | {"dependency_outcome": row["dependency_outcome"]} if name == "dependencies" else view


async def cancel_job(request: web.Request) -> web.Response:
    """`?tree=true` also cancels the job's waiting descendants and its blocked dependents (running ones are asked
    to stop), even when the job itself already finished."""
    gw = gateway_of(request)
    job_id = job_id_param(request)
    tree = query_value(request, "tree", query_boolean) or False
    if tree:  # the dependents first: one that runs anyway must not be released by the job's own cancel
        await _cancel_tree(gw, job_id)
    outcome, row = await job_store.cancel(gw.pool, job_id)
    if row is None:
        raise not_found(job_id)
    if tree and outcome == "final":
        return json_response(job_view(row))
    if outcome == "final":
        raise Problem(409, "Conflict", f"job {job_id} already finished ({row['state']})")
    if outcome == "requested":
        await gw.broker.publish_event(events.CANCEL, events.cancel_command(job_id))
        return json_response(job_view(row), 202)
    gw.announcer.add(events.FINISHED, [events.job_event(row, events.stamp())])
    return json_response(job_view(row))


async def _cancel_tree(gw: Gateway, job_id: int) -> None:
    rows = await job_store.cancel_tree(gw.pool, job_id)
    running = [r["id"] for r in rows if r["running"]]
    for other in running:
        await gw.broker.publish_event(events.CANCEL, events.cancel_command(other))
    cancelled = [r for r in rows if not r["running"]]
    if cancelled:
        at = events.stamp()
        gw.announcer.add(events.FINISHED, [events.job_event(r, at) for r in cancelled])


async def retry_job(request: web.Request) -> web.Response:
    """A privileged kind (a maintenance job) is re-run only by `admin`, as it is submitted only by `admin`."""
    gw = gateway_of(request)
    job_id = job_id_param(request)
    kind = await job_store.kind_of(gw.pool, job_id)
    if kind is None:
        raise not_found(job_id)
    refuse_privileged({"kind": kind}, gw.kinds.rules, is_admin())
    row = await requeue_finished(gw, job_id)
    return json_response(job_view(row), 202)


async def change_job(request: web.Request) -> web.Response:
    """PATCH: a waiting job's priority and/or run_at (or delay_s); 409 once it runs or finished."""
    gw = gateway_of(request)
    job_id = job_id_param(request)
    _, body = await read_json(request)
    change = parse_change(body)
    kind = await job_store.kind_of(gw.pool, job_id)
    if kind is None:
        raise not_found(job_id)
    refuse_privileged({"kind": kind}, gw.kinds.rules, is_admin())
    row = await job_store.change_waiting(gw.pool, job_id, change)
    if row is None:
        current = await job_store.get_job(gw.pool, job_id)
        if current is None:
            raise not_found(job_id)
        state = current["state"] + (" (cancel requested)" if current["cancel_requested"] else "")
        raise Problem(409, "Conflict", f"job {job_id} is {state}; only a waiting job can be changed")
    gw.publisher.add([row])
    return json_response(job_view(row))


async def requeue_finished(gw: Gateway, job_id: int) -> asyncpg.Record:
    """Lifecycle step 7, then publish in the background; 404 if missing, 409 if not finished."""
    try:
        row = await job_store.retry(gw.pool, job_id)
    except asyncpg.UniqueViolationError:
        raise Problem(409, "Conflict", f"job {job_id}'s dedupe key is held by another unfinished job") from None
    if row is None:
        current = await job_store.get_job(gw.pool, job_id)
        if current is None:
            raise not_found(job_id)
        raise Problem(409, "Conflict", f"job {job_id} is {current['state']}; only finished jobs can be retried")
    gw.publisher.add([row])
    announce(gw, [row])
    return row
