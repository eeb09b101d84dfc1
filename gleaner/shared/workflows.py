"""Workflows in PostgreSQL: link new jobs to the jobs they depend on, and insert a handler's child jobs once.

Releasing a dependent is not here: the `jobs_release_dependents` trigger (migration 0036) does it in the
transaction that records a dependency's outcome, whoever records it.

The child rule: a child is keyed by (parent id, key), the key being the one the handler gave or else the child's
position among the children the attempt submitted (`#0`, `#1`, ...). The insert is fenced on the parent's attempt
and lease owner (the parent row is share-locked while its children go in), so a late attempt writes nothing, and a
retried or re-delivered parent that submits the same children again gets the existing ids back, never new rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from gleaner.shared.db import Connection
from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.submission import JobSpec

FINAL = frozenset({"succeeded", "partial", "failed", "cancelled"})

LOCK_DEPENDENCIES = "SELECT id, state FROM jobs WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE"
MARK_DEPENDED_ON = "UPDATE jobs SET has_dependents = true WHERE id = ANY($1::bigint[]) AND NOT has_dependents"
ADD_EDGES = """
INSERT INTO job_dependencies (job_id, depends_on_id, outcome)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])
ON CONFLICT DO NOTHING
"""
# the new rows (inserted by this transaction, so nobody else sees them yet) take their waiting state
BLOCK = """
UPDATE jobs AS j
SET depends_on = ARRAY(SELECT d.depends_on_id FROM job_dependencies AS d WHERE d.job_id = j.id ORDER BY 1),
    blocked_on = l.blocked_on, on_dependency_failure = l.on_failure, allow_partial = l.allow_partial,
    collects_outcomes = l.collects,
    state = CASE WHEN l.failed_by IS NOT NULL THEN 'cancelled' WHEN l.blocked_on > 0 THEN 'blocked' ELSE j.state END,
    error = CASE WHEN l.failed_by IS NOT NULL
                 THEN jsonb_build_object('class', 'DependencyFailed', 'message', l.failed_by) END,
    finished_at = CASE WHEN l.failed_by IS NOT NULL THEN now() END,
    payload = CASE WHEN l.collects AND l.blocked_on = 0 AND l.failed_by IS NULL
                   THEN j.payload || jsonb_build_object('dependencies', job_dependency_outcomes(j.id))
                   ELSE j.payload END
FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bool[], $5::bool[], $6::text[])
     AS l(id, blocked_on, on_failure, allow_partial, collects, failed_by)
WHERE j.id = l.id
"""

# the fence: the parent is running this attempt under this owner; FOR SHARE holds off the reaper meanwhile
PARENT = """
SELECT has_dependents FROM jobs WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'
FOR SHARE
"""
INSERT_CHILDREN = """
INSERT INTO jobs AS j (kind, queue, priority, payload, max_attempts, timeout_s, retry_base_s, retry_cap_s,
                       run_at, state, site, request_id, parent_id, child_key, trigger, has_dependents)
SELECT u.kind, u.queue, u.priority, u.payload, u.max_attempts, u.timeout_s, u.retry_base_s, u.retry_cap_s,
       u.due, CASE WHEN u.due > now() THEN 'scheduled' ELSE 'queued' END, u.site, $12, $13, u.child_key, 'job', $14
FROM (
    SELECT c.*, now() + make_interval(secs => COALESCE(c.delay, 0)) AS due
    FROM unnest($1::text[], $2::text[], $3::smallint[], $4::jsonb[], $5::int[], $6::float8[], $7::float8[],
                $8::float8[], $9::float8[], $10::text[], $11::text[]) WITH ORDINALITY
         AS c(kind, queue, priority, payload, max_attempts, timeout_s, retry_base_s, retry_cap_s, delay, site,
              child_key, ord)
    ORDER BY c.ord
) AS u
ON CONFLICT (parent_id, child_key) WHERE child_key IS NOT NULL DO NOTHING
RETURNING j.id, j.child_key
"""
CHILDREN_BY_KEY = "SELECT id, child_key FROM jobs WHERE parent_id = $1 AND child_key = ANY($2::text[])"
# the jobs waiting for the parent wait for its children too (a `then` callback waits for the whole tree)
PARENT_DEPENDENTS = """
SELECT j.id FROM jobs AS j
WHERE j.id IN (SELECT d.job_id FROM job_dependencies AS d WHERE d.depends_on_id = $1 AND d.outcome IS NULL)
  AND j.state = 'blocked'
ORDER BY j.id FOR NO KEY UPDATE
"""
ADD_BLOCKERS = "UPDATE jobs SET blocked_on = blocked_on + $2 WHERE id = ANY($1::bigint[])"


class StaleParent(Exception):
    """The parent's attempt is no longer the one running here (the reaper took it over): nothing was written."""


@dataclass(frozen=True, slots=True)
class Link:
    """A new job's dependencies; `where` names its field in the request (`depends_on`, `jobs[2].depends_on`)."""

    job_id: int
    depends_on: tuple[int, ...]
    on_failure: str = "cancel"
    allow_partial: bool = False
    collects: bool = False
    where: str = "depends_on"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a new job's dependencies decide at submission: how many are still to end, or the one that failed it."""

    blocked_on: int
    failed_by: str | None


def verdict(link: Link, states: Mapping[int, str]) -> Verdict:
    """Pure: count the dependencies not ended; a failed one cancels the job unless it runs anyway."""
    waiting = 0
    for dependency in link.depends_on:
        state = states[dependency]
        if state not in FINAL:
            waiting += 1
        elif _bad(state, link.allow_partial) and link.on_failure == "cancel":
            return Verdict(0, f"dependency {dependency} ended {state}")
    return Verdict(waiting, None)


def _bad(state: str, allow_partial: bool) -> bool:
    return state in ("failed", "cancelled") or (state == "partial" and not allow_partial)


async def link(connection: Connection, links: Sequence[Link]) -> None:
    """In the caller's transaction, after the jobs' insert: lock the dependencies (id order), mark them, record
    the edges (with the outcome of those already ended) and set each new job's state. 422 for an unknown id."""
    wanted = sorted({d for item in links for d in item.depends_on})
    states = {r["id"]: r["state"] for r in await connection.fetch(LOCK_DEPENDENCIES, wanted)}
    missing = [
        field_error(item.where, f"job {d} does not exist") for item in links for d in item.depends_on if d not in states
    ]
    if missing:
        raise ValidationProblem(missing[:100])
    await connection.execute(MARK_DEPENDED_ON, wanted)
    edges = [(item.job_id, d) for item in links for d in item.depends_on]
    outcomes = [states[d] if states[d] in FINAL else None for _, d in edges]
    await connection.execute(ADD_EDGES, [e[0] for e in edges], [e[1] for e in edges], outcomes)
    verdicts = [verdict(item, states) for item in links]
    await connection.execute(
        BLOCK,
        [item.job_id for item in links],
        [v.blocked_on for v in verdicts],
        [item.on_failure for item in links],
        [item.allow_partial for item in links],
        [item.collects for item in links],
        [v.failed_by for v in verdicts],
    )


@dataclass(frozen=True, slots=True)
class Parent:
    """The attempt that submits children: the fence of their insert."""

    id: int
    attempt: int
    owner: str
    request_id: str | None = None


async def insert_children(
    pool: asyncpg.Pool, parent: Parent, specs: Sequence[JobSpec], keys: Sequence[str]
) -> list[int]:
    """The children's ids in input order (existing ones for keys already used); StaleParent when fenced out."""
    async with pool.acquire() as connection, connection.transaction():
        depended = await connection.fetchval(PARENT, parent.id, parent.attempt, parent.owner)
        if depended is None:
            raise StaleParent(f"job {parent.id} attempt {parent.attempt} is not running here any more")
        rows = await connection.fetch(
            INSERT_CHILDREN, *_child_columns(specs, keys), parent.request_id, parent.id, depended
        )
        new = [r["id"] for r in rows]
        ids = {r["child_key"]: r["id"] for r in rows}
        if len(ids) < len(keys):
            ids |= {r["child_key"]: r["id"] for r in await connection.fetch(CHILDREN_BY_KEY, parent.id, list(keys))}
        if depended and new:
            await _extend_dependents(connection, parent.id, new)
    return [ids[key] for key in keys]


async def _extend_dependents(connection: Connection, parent_id: int, children: Sequence[int]) -> None:
    dependents = [r["id"] for r in await connection.fetch(PARENT_DEPENDENTS, parent_id)]
    if not dependents:
        return
    edges = [(job, child) for job in dependents for child in children]
    await connection.execute(ADD_EDGES, [e[0] for e in edges], [e[1] for e in edges], [None] * len(edges))
    await connection.execute(ADD_BLOCKERS, dependents, len(children))


def _child_columns(specs: Sequence[JobSpec], keys: Sequence[str]) -> list[list[object]]:
    names = ("kind", "queue", "priority", "payload", "max_attempts", "timeout_s", "retry_base_s", "retry_cap_s")
    columns: list[list[object]] = [[getattr(s, name) for s in specs] for name in names]
    columns.append([s.delay_s for s in specs])
    columns.append([s.site for s in specs])
    columns.append(list(keys))
    return columns
