"""SQL for jobs: group-committed inserts, reads, listing, cancel and user retry (lifecycle steps 1, 6 and 7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

import asyncpg

from gleaner.services.gateway.job_views import JOB_FIELDS, JOB_TIMES
from gleaner.shared import workflows
from gleaner.shared.db import Connection
from gleaner.shared.requeue import REQUEUE_SET
from gleaner.shared.submission import JobChange, JobSpec

# A timestamp past year 9999 (or before year 1) is valid in PostgreSQL but no Python datetime holds it: reading
# one failed every listing that met the row. Views clamp them, so any stored instant shows (as the limit).
CLAMPED = """CASE WHEN j.{name} > '9999-12-31 23:59:59.999999+00' THEN '9999-12-31 23:59:59.999999+00'::timestamptz
    WHEN j.{name} < '0001-01-01 00:00:00+00' THEN '0001-01-01 00:00:00+00'::timestamptz ELSE j.{name} END AS {name}"""


def _columns(names: Sequence[str]) -> str:
    return ", ".join(CLAMPED.format(name=n) if n in JOB_TIMES else f"j.{n}" for n in names)


VIEW_COLUMNS = _columns((*JOB_FIELDS, "request_id"))
# what the outbox needs to publish a row, beside the columns it shares with the view
OUTBOX_EXTRA = """j.generation,
    GREATEST(0, EXTRACT(EPOCH FROM (j.run_at - now())))::float8 AS delay_s,
    (EXTRACT(EPOCH FROM j.run_at) * 1000)::bigint AS due_ms"""
# every job column the API shows, plus what the outbox needs to publish the row
RETURNING = f"{VIEW_COLUMNS}, {OUTBOX_EXTRA}"
# What an insert returns: the columns a new job's view takes from its row (job_views.submitted_view), those the outbox
# and the `job.submitted` event read, and the kind and dedupe key that match rows to items. Not the payload nor the
# columns a new row holds as submitted or as defaulted: decoding all 34 back (the payload through orjson) and turning
# them into a dict per row was a fifth of the gateway's time in the batch case.
INSERTED = f"""{
    _columns(
        (
            "id",
            "kind",
            "queue",
            "priority",
            "state",
            "attempt",
            "site",
            "schedule_id",
            "dedupe_key",
            "request_id",
            "depends_on",
            "blocked_on",
            "created_at",
            "run_at",
            "updated_at",
        )
    )
}, {OUTBOX_EXTRA}"""

# The INSERT's parameters, in order: (unnest column, array type). A column that every item of a statement sets alike
# (a batch's kind, queue, request id, timeouts...) goes as one element, which every row takes; the payload always
# goes whole, so unnest yields a row per item (see insert_args).
INSERT_COLUMNS = (
    ("kind", "text"),
    ("queue", "text"),
    ("priority", "smallint"),
    ("payload", "jsonb"),
    ("max_attempts", "int"),
    ("timeout_s", "float8"),
    ("retry_base_s", "float8"),
    ("retry_cap_s", "float8"),
    ("at", "timestamptz"),
    ("delay", "float8"),
    ("site", "text"),
    ("dedupe_key", "text"),
    ("request_id", "text"),
    ("soft_timeout_s", "float8"),
)
DEDUPE_KEYS = [name for name, _ in INSERT_COLUMNS].index("dedupe_key")
SHARED_OR_OWN = ", ".join(
    f"CASE WHEN cardinality(${n}::{kind}[]) = 1 THEN (${n}::{kind}[])[1] ELSE u.{name} END AS {name}"
    for n, (name, kind) in enumerate(INSERT_COLUMNS, 1)
    if name != "payload"
)

# Rows due now go in already counted as enqueued, and the statement records their ids in one job_outbox row (see
# migration 0039): the gateway deletes it once the broker confirmed their messages, else the relay publishes them.
# Each row returns the outbox row that stands for its message (`outbox_id`, NULL for a delayed row: that one keeps
# `enqueued_at IS NULL` and its marker, see gleaner/shared/outbox.py).
_INSERT = f"""
WITH input AS (
    SELECT v.*, COALESCE(v.at, now() + make_interval(secs => COALESCE(v.delay, 0))) AS due
    FROM (
        SELECT u.ord, u.payload, {SHARED_OR_OWN}
        FROM unnest($1::text[], $2::text[], $3::smallint[], $4::jsonb[], $5::int[], $6::float8[], $7::float8[],
                    $8::float8[], $9::timestamptz[], $10::float8[], $11::text[], $12::text[], $13::text[],
                    $14::float8[])
             WITH ORDINALITY AS u(kind, queue, priority, payload, max_attempts, timeout_s, retry_base_s, retry_cap_s,
                                  at, delay, site, dedupe_key, request_id, soft_timeout_s, ord)
    ) AS v
), inserted AS (
    INSERT INTO jobs AS j (kind, queue, priority, payload, max_attempts, timeout_s, retry_base_s, retry_cap_s,
                           run_at, state, site, dedupe_key, request_id, soft_timeout_s, enqueued_at)
    SELECT kind, queue, priority, payload, max_attempts, timeout_s, retry_base_s, retry_cap_s,
           due, CASE WHEN due > now() THEN 'scheduled' ELSE 'queued' END, site, dedupe_key, request_id, soft_timeout_s,
           CASE WHEN due > now() THEN NULL ELSE now() END
    FROM input ORDER BY ord
    {{on_conflict}}
    RETURNING {INSERTED}, j.enqueued_at IS NOT NULL AS in_outbox
), outbox AS (
    INSERT INTO job_outbox (job_ids)
    SELECT array_agg(id) FROM inserted WHERE in_outbox HAVING count(*) > 0
    RETURNING id
)
SELECT i.*, CASE WHEN i.in_outbox THEN (SELECT id FROM outbox) END AS outbox_id FROM inserted AS i
"""
INSERT = _INSERT.format(
    on_conflict="""ON CONFLICT (dedupe_key)
        WHERE dedupe_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running', 'retrying', 'blocked')
    DO NOTHING"""
)
# A submission without dedupe keys cannot conflict, and ON CONFLICT is not free: PostgreSQL inserts every row
# speculatively (a speculative-insertion lock taken and released, then a WAL record confirming the row), whether or
# not the row can meet the arbiter index.
INSERT_WITHOUT_KEYS = _INSERT.format(on_conflict="")

GET = f"SELECT {VIEW_COLUMNS} FROM jobs AS j WHERE id = $1"
KIND_OF = "SELECT kind FROM jobs WHERE id = $1"
GET_MANY = f"SELECT {RETURNING} FROM jobs AS j WHERE id = ANY($1::bigint[]) ORDER BY id"
# rows just inserted (and linked) by this transaction, read again with the outbox row their INSERT wrote
GET_INSERTED = f"""
SELECT {RETURNING}, CASE WHEN j.enqueued_at IS NOT NULL THEN $2::bigint END AS outbox_id
FROM jobs AS j WHERE id = ANY($1::bigint[])
"""
UNFINISHED_BY_DEDUPE = """
SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('scheduled', 'queued', 'running', 'retrying', 'blocked')
"""
ATTEMPTS = "SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt"

CANCEL_WAITING = f"""
UPDATE jobs AS j SET state = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL
WHERE id = $1 AND state IN ('scheduled', 'queued', 'retrying', 'blocked')
RETURNING {VIEW_COLUMNS}
"""
# POST /jobs/{id}/cancel?tree=true: the job's descendants (children, theirs, ...) and the jobs that depend on it
# (and on those), each taken once; the waiting ones are cancelled in id order, the running ones asked to stop.
TREE = """
WITH RECURSIVE tree(id) AS (
    SELECT $1::bigint
    UNION
    SELECT n.id FROM tree AS t CROSS JOIN LATERAL (
        SELECT c.id FROM jobs AS c WHERE c.parent_id = t.id
        UNION ALL
        SELECT d.job_id FROM job_dependencies AS d WHERE d.depends_on_id = t.id
    ) AS n
)
SELECT id FROM tree WHERE id <> $1 ORDER BY id LIMIT $2
"""
CANCEL_TREE = f"""
WITH locked AS (
    SELECT id FROM jobs WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE
), waiting AS (
    UPDATE jobs AS j SET state = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL
    WHERE j.id IN (SELECT id FROM locked) AND j.state IN ('scheduled', 'queued', 'retrying', 'blocked')
    RETURNING {VIEW_COLUMNS}, false AS running
), running AS (
    UPDATE jobs AS j SET cancel_requested = true, updated_at = now()
    WHERE j.id IN (SELECT id FROM locked) AND j.state = 'running' AND NOT j.cancel_requested
    RETURNING {VIEW_COLUMNS}, true AS running
)
SELECT * FROM waiting UNION ALL SELECT * FROM running
"""
CHILDREN = f"SELECT {VIEW_COLUMNS} FROM jobs AS j WHERE parent_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
DEPENDENCIES = f"""
SELECT {VIEW_COLUMNS}, d.outcome AS dependency_outcome
FROM job_dependencies AS d JOIN jobs AS j ON j.id = d.depends_on_id
WHERE d.job_id = $1 AND d.depends_on_id < $2 ORDER BY d.depends_on_id DESC LIMIT $3
"""
MAX_TREE = 100_000
CANCEL_RUNNING = f"""
UPDATE jobs AS j SET cancel_requested = true, updated_at = now()
WHERE id = $1 AND state = 'running'
RETURNING {VIEW_COLUMNS}
"""

# A waiting job's new priority and/or due time. The message already published carries the old ones: the generation
# moves on so the claim drops that message, and the row is published again (enqueued_at NULL: the relay too). The
# row lock orders it with a concurrent claim: whichever commits first wins, the other finds the row moved on.
CHANGE_WAITING = f"""
UPDATE jobs AS j
SET priority = COALESCE($2, j.priority),
    run_at = COALESCE($3, now() + make_interval(secs => $4), j.run_at),
    state = CASE WHEN j.state = 'retrying' THEN 'retrying'
                 WHEN COALESCE($3, now() + make_interval(secs => $4), j.run_at) > now() THEN 'scheduled'
                 ELSE 'queued' END,
    generation = j.generation + 1, enqueued_at = NULL, publish_failed = false, updated_at = now()
WHERE id = $1 AND state IN ('scheduled', 'queued', 'retrying') AND NOT cancel_requested
RETURNING {RETURNING}
"""

RETRY = f"""
UPDATE jobs AS j SET {REQUEUE_SET}
WHERE id = $1 AND state IN ('succeeded', 'partial', 'failed', 'cancelled')
RETURNING {RETURNING}
"""


@dataclass(frozen=True, slots=True)
class NewJob:
    """One row to insert: the validated spec and the request it came from."""

    spec: JobSpec
    request_id: str | None


def insert_args(items: Sequence[NewJob]) -> list[list[Any] | None]:
    """The INSERT's fourteen parameter arrays (INSERT_COLUMNS). One that no item sets (a batch of plain jobs names
    no run_at, delay, site, dedupe key or soft timeout) goes as NULL: unnest pads it with NULLs. One that every item
    sets alike goes as that one value, which the statement gives every row: asyncpg then encodes one element instead
    of one per row (it tests each element of an array against three ABCs). The payloads always go whole.

    Client CPU of a 1,000-row insert of plain jobs: 3.4 -> 2.5 µs a row with NULL columns, then 7.9 -> 5.3 µs
    (arguments and statement) with one-value columns."""
    specs = [item.spec for item in items]
    columns = [list(map(_ATTRIBUTES[name], specs)) for name, _ in INSERT_COLUMNS[:12]]
    columns.append([item.request_id for item in items])
    columns.append([s.soft_timeout_s for s in specs])
    named = zip(INSERT_COLUMNS, columns, strict=True)
    return [column if name == "payload" else _shared(column) for (name, _), column in named]


_ATTRIBUTES = {
    name: attrgetter({"at": "run_at", "delay": "delay_s"}.get(name, name)) for name, _ in INSERT_COLUMNS[:12]
}


def _shared(column: list[Any]) -> list[Any] | None:
    """NULL for a column of NULLs, its one value for a column of equal values, else the column."""
    first = column[0] if column else None
    if column.count(first) < len(column):
        return column
    return None if first is None else [first]


def match_inserted(items: Sequence[NewJob], rows: Sequence[asyncpg.Record]) -> list[asyncpg.Record | None]:
    """Rows in input order, None where a dedupe key conflicted (ids follow insertion order)."""
    ordered = sorted(rows, key=_BY_ID)
    if len(ordered) == len(items):  # nothing conflicted
        return list(ordered)
    out: list[asyncpg.Record | None] = []
    index = 0
    for item in items:
        row = ordered[index] if index < len(ordered) else None
        if row is not None and row["dedupe_key"] == item.spec.dedupe_key and row["kind"] == item.spec.kind:
            out.append(row)
            index += 1
        else:
            out.append(None)
    return out


def insertion_order(items: Sequence[NewJob]) -> list[int]:
    """Positions in the order the rows go in: those without a dedupe key first, as given, then the others by key.

    Inserting a dedupe key waits for a concurrent insert of the same key; two groups inserting keys `a, b` and
    `b, a` would wait for each other, so every group takes its keys in one order.
    """
    keys = [item.spec.dedupe_key for item in items]
    if keys.count(None) == len(keys):
        return list(range(len(items)))
    return sorted(range(len(items)), key=lambda i: (keys[i] is not None, keys[i] or ""))


_BY_ID = itemgetter("id")


async def insert_jobs(connection: Connection | asyncpg.Pool, items: Sequence[NewJob]) -> list[asyncpg.Record | None]:
    """One statement for all items; the INSERTED columns, None for items whose dedupe key an unfinished job already
    holds."""
    order = insertion_order(items)
    as_given = order == list(range(len(items)))
    ordered = items if as_given else [items[i] for i in order]
    args = insert_args(ordered)
    statement = INSERT_WITHOUT_KEYS if args[DEDUPE_KEYS] is None else INSERT
    rows = match_inserted(ordered, await connection.fetch(statement, *args))
    if as_given:
        return rows
    out: list[asyncpg.Record | None] = [None] * len(items)
    for position, row in zip(order, rows, strict=True):
        out[position] = row
    return out


async def insert_linked(
    connection: Connection, items: Sequence[NewJob], then: NewJob | None = None
) -> list[asyncpg.Record | None]:
    """`insert_jobs` plus each new job's dependencies and a batch's `then` callback (waiting for every item),
    in the caller's transaction. The callback's row comes last. Once anything is linked, the rows are read again
    whole (RETURNING columns), as they are after linking; else they are `insert_jobs`' (INSERTED columns)."""
    everything = [*items, then] if then is not None else list(items)
    rows = await insert_jobs(connection, everything)
    links = [
        workflows.Link(
            row["id"],
            item.spec.depends_on,
            item.spec.on_dependency_failure,
            item.spec.allow_partial,
            where=f"jobs[{index}].depends_on" if len(items) > 1 or then else "depends_on",
        )
        for index, (item, row) in enumerate(zip(items, rows, strict=False))
        if row is not None and item.spec.depends_on
    ]
    if then is not None and rows[-1] is not None and all(r is not None for r in rows[:-1]):
        batch = tuple(r["id"] for r in rows[:-1] if r is not None)
        links.append(workflows.Link(rows[-1]["id"], batch, "run", True, collects=True, where="then"))
    if not links:
        return rows
    await workflows.link(connection, links)
    ids = [r["id"] for r in rows if r is not None]
    outbox_id = next((r["outbox_id"] for r in rows if r is not None and r["outbox_id"] is not None), None)
    fresh = {r["id"]: r for r in await connection.fetch(GET_INSERTED, ids, outbox_id)}
    return [fresh[r["id"]] if r is not None else None for r in rows]


def links_of(items: Sequence[NewJob]) -> bool:
    """Whether a submission needs the linked insert (the single-submission lanes take only plain jobs)."""
    return any(item.spec.depends_on for item in items)


async def dedupe_holder(pool: asyncpg.Pool, dedupe_key: str) -> int | None:
    value = await pool.fetchval(UNFINISHED_BY_DEDUPE, dedupe_key)
    return int(value) if value is not None else None


async def get_job(pool: asyncpg.Pool, job_id: int) -> asyncpg.Record | None:
    return await pool.fetchrow(GET, job_id)


async def kind_of(pool: asyncpg.Pool, job_id: int) -> str | None:
    kind: str | None = await pool.fetchval(KIND_OF, job_id)
    return kind


async def get_jobs(connection: Connection | asyncpg.Pool, ids: Sequence[int]) -> list[asyncpg.Record]:
    rows = await connection.fetch(GET_MANY, list(ids))
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


async def attempts(pool: asyncpg.Pool, job_id: int) -> list[asyncpg.Record]:
    return list(await pool.fetch(ATTEMPTS, job_id))


async def cancel_tree(pool: asyncpg.Pool, job_id: int) -> list[asyncpg.Record]:
    """Cancel what hangs off a job (its descendants and its dependents, transitively); the rows changed."""
    async with pool.acquire() as connection, connection.transaction():
        ids = [r["id"] for r in await connection.fetch(TREE, job_id, MAX_TREE)]
        return list(await connection.fetch(CANCEL_TREE, ids)) if ids else []


async def children(pool: asyncpg.Pool, job_id: int, before_id: int | None, limit: int) -> list[asyncpg.Record]:
    return list(await pool.fetch(CHILDREN, job_id, before_id or 2**63 - 1, limit))


async def dependencies(pool: asyncpg.Pool, job_id: int, before_id: int | None, limit: int) -> list[asyncpg.Record]:
    return list(await pool.fetch(DEPENDENCIES, job_id, before_id or 2**63 - 1, limit))


async def cancel(pool: asyncpg.Pool, job_id: int) -> tuple[str, asyncpg.Record | None]:
    """('cancelled' | 'requested' | 'final' | 'missing', row)."""
    row = await pool.fetchrow(CANCEL_WAITING, job_id)
    if row is not None:
        return "cancelled", row
    row = await pool.fetchrow(CANCEL_RUNNING, job_id)
    if row is not None:
        return "requested", row
    row = await pool.fetchrow(GET, job_id)
    return ("final" if row is not None else "missing"), row


async def retry(connection: Connection | asyncpg.Pool, job_id: int) -> asyncpg.Record | None:
    """Lifecycle step 7 for a finished row; None if the row is not finished (or missing)."""
    return await connection.fetchrow(RETRY, job_id)


@dataclass(frozen=True, slots=True)
class ListFilters:
    state: str | None = None
    kind: str | None = None
    queue: str | None = None
    site: str | None = None
    schedule_id: int | None = None
    parent_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None  # a stream's catch-up: rows changed since it last saw an event
    payload: str | None = None  # JSON the payload must contain

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


NEWEST_ID = "SELECT max(id) FROM jobs"


# Where a listing finds its rows (migration 0041): jobs_state_id, jobs_kind_id and jobs_updated_at leave out running
# rows, which jobs_leases holds alone, and jobs_updated_at also leaves out a finished row unchanged since it finished
# (`updated_at` = `finished_at`), which jobs_finished holds. A listing filtered on state, kind or updated_after reads
# each part apart, named by a literal condition that the part's index predicate follows from (a generic plan cannot
# match `state = $1` to one). The running rows, at most the workers' slots, are read whole: OFFSET 0 keeps them a set,
# never a walk down the primary key until enough running rows turn up, which stale statistics could choose.
SETTLED = "state <> 'running'"
RUNNING = "state = 'running'"
CHANGED = "updated_at IS DISTINCT FROM finished_at"
UNCHANGED = "updated_at = finished_at AND finished_at > ${}"
UPDATED_AFTER = "updated_at > ${}"


def _parts(filters: ListFilters, updated_after: int | None) -> list[tuple[str, ...]]:
    """The conditions of each part a listing reads apart (one empty part: read as one)."""
    if filters.state is None and filters.kind is None and updated_after is None:
        return [()]
    parts: list[tuple[str, ...]] = []
    if filters.state != "running":
        if updated_after is None:
            parts.append((SETTLED,))
        else:
            parts += [(SETTLED, CHANGED), (SETTLED, UNCHANGED.format(updated_after))]
    if filters.state in (None, "running"):
        parts.append((RUNNING,))
    return parts


def list_query(
    filters: ListFilters, after_id: int | None, limit: int, floor_id: int | None = None
) -> tuple[str, list[Any]]:
    """Newest first (id DESC), keyset on id, ids from `floor_id` up; only the filters given become conditions."""
    conditions: list[str] = []
    args: list[Any] = []
    updated_after: int | None = None
    simple = [
        ("state = ${}", filters.state),
        ("kind = ${}", filters.kind),
        ("queue = ${}", filters.queue),
        ("site = ${}", filters.site),
        ("schedule_id = ${}", filters.schedule_id),
        ("parent_id = ${}", filters.parent_id),
        ("created_at > ${}", filters.created_after),
        ("created_at < ${}", filters.created_before),
        (UPDATED_AFTER, filters.updated_after),
        ("payload @> ${}::text::jsonb", filters.payload),
        ("id < ${}", after_id),
        ("id >= ${}", floor_id),
    ]
    for template, value in simple:
        if value is not None:
            args.append(value)
            conditions.append(template.format(len(args)))
            if template is UPDATED_AFTER:  # its parameter, which UNCHANGED names too
                updated_after = len(args)
    args.append(limit)
    # the page's ids first, then its rows by primary key: the ids alone come from an index-only scan of the
    # filter's (column, id) index, and `= ANY(ARRAY(...))` keeps the rows a key lookup even in a generic plan,
    # where walking the primary key backwards through rows of other kinds would cost the whole table
    page = _page(conditions, _parts(filters, updated_after), f"ORDER BY id DESC LIMIT ${len(args)}")
    return f"SELECT {VIEW_COLUMNS} FROM jobs AS j WHERE j.id = ANY(ARRAY({page})) ORDER BY j.id DESC", args


# A generic plan cannot see how far back `updated_after` reaches, and walked the primary key down through every row
# older than the first match: 9-59 s at 10,000,000 rows when nothing changed in the last minute (or, for the part
# read from jobs_updated_at, when no finished row changed since). Planned for its instant, the listing reads the rows
# changed since by index when they are few (0.1 ms) and down the primary key when they are many.
CUSTOM_PLAN = "SET LOCAL plan_cache_mode = force_custom_plan"


async def list_page(
    pool: asyncpg.Pool, filters: ListFilters, after_id: int | None, limit: int, floor_id: int | None = None
) -> list[asyncpg.Record]:
    """The rows of `list_query`."""
    sql, args = list_query(filters, after_id, limit, floor_id)
    if filters.updated_after is None:
        return list(await pool.fetch(sql, *args))
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(CUSTOM_PLAN)
        return list(await connection.fetch(sql, *args))


def _page(conditions: list[str], parts: list[tuple[str, ...]], ordered: str) -> str:
    """A page's ids: one statement, or its parts' ids merged (a running part read whole, see RUNNING)."""
    selects = []
    for part in parts:
        where = " AND ".join((*conditions, *part))
        selects.append(
            f"SELECT id FROM jobs {'WHERE ' + where if where else ''} {'OFFSET 0' if RUNNING in part else ordered}"
        )
    if len(parts) == 1 and RUNNING not in parts[0]:
        return selects[0]
    return f"SELECT id FROM ({' UNION ALL '.join(f'({s})' for s in selects)}) AS p {ordered}"


async def newest_id(pool: asyncpg.Pool) -> int | None:
    value: int | None = await pool.fetchval(NEWEST_ID)
    return value


async def change_waiting(pool: asyncpg.Pool, job_id: int, change: JobChange) -> asyncpg.Record | None:
    """The changed row, or None when the job is not waiting (missing, running, finished, being cancelled)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        CHANGE_WAITING, job_id, change.priority, change.run_at, change.delay_s
    )
    return row
