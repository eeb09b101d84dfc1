"""`python -m bench.plans DSN`: how the hot statements reach `jobs` in a database, by EXPLAIN (ANALYZE, BUFFERS).

A group of waiting jobs is submitted, marked enqueued, claimed and finished, another group is claimed with an
expired lease and reaped while a backlog waits, and the relay's, the reaper's and the pruner's reads run, each with
the session settings of the service that issues it; everything is rolled back at the end, so a loaded history (a
`--scale-template` database) serves again. Prints, per statement, its time, the buffers it touched and every scan
node: the index it used or `Seq Scan`. `statement_plans` is what tests assert on.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from gleaner.services.gateway.job_store import INSERT
from gleaner.services.scheduler.reaper import EXPIRED, LEASE_ORDER, REAP
from gleaner.services.scheduler.relay import BACKLOG, CLEAR_STALE, DUE_OUTBOXES, OUTBOXED_ROWS, UNPUBLISHED
from gleaner.services.worker.app import POINT_LOOKUPS
from gleaner.services.worker.claims import CLAIM, FINISH
from gleaner.shared.outbox import DELETE_OUTBOX, MARK_ENQUEUED
from gleaner.shared.prune_statements import PRUNE_JOBS

GROUP = 100
WAITING = 2000
OWNER = "bench-plans"
WEEK_S = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class Plan:
    """One statement's plan: its scans (`Index Scan using jobs_pkey on jobs`, `Seq Scan on jobs`), time, buffers."""

    name: str
    scans: tuple[str, ...]
    ms: float
    buffers: int

    def line(self) -> str:
        return f"{self.name:<14} {self.ms:>9.2f} ms {self.buffers:>8} buffers  {'; '.join(self.scans)}"


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _scan(node: dict[str, Any]) -> str | None:
    """`Index Scan using jobs_pkey on jobs`, `Bitmap Index Scan using jobs_leases`, `Seq Scan on jobs`, or None."""
    kind, relation, index = node["Node Type"], node.get("Relation Name"), node.get("Index Name")
    if kind == "Bitmap Index Scan":
        return f"{kind} using {index}"
    if relation is None or kind in ("ModifyTable", "CTE Scan", "Function Scan", "Bitmap Heap Scan"):
        return None
    return f"{kind}{' using ' + index if index else ''} on {relation}"


async def _explain(connection: asyncpg.Connection, name: str, statement: str, *args: Any) -> Plan:
    raw = await connection.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", *args)
    root = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    nodes = [n for top in [root["Plan"], *root.get("Triggers", [])] if "Node Type" in top for n in _nodes(top)]
    scans = tuple(dict.fromkeys(s for s in map(_scan, nodes) if s))
    buffers = root["Plan"].get("Shared Hit Blocks", 0) + root["Plan"].get("Shared Read Blocks", 0)
    return Plan(name, scans, round(root["Execution Time"], 2), buffers)


async def _settings(connection: asyncpg.Connection, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        await connection.execute("SELECT set_config($1, $2, true)", name, value)


def _submission(n: int) -> list[list[Any]]:
    """The gateway's INSERT arguments for `n` noop jobs due now."""
    columns: list[Any] = [
        ["noop"],
        ["default"],
        [0],
        ["{}"],
        [3],
        [300.0],
        [1.0],
        [300.0],
        [None],
        [None],
        [None],
        [None],
        [None],
        [None],
    ]
    return [column * n for column in columns]


async def _group(connection: asyncpg.Connection, plans: list[Plan], suffix: str) -> list[int]:
    """A group submitted and marked enqueued: its ids."""
    ids = [r["id"] for r in await connection.fetch(INSERT, *_submission(GROUP))]
    plans.append(await _explain(connection, "insert" + suffix, INSERT, *_submission(GROUP)))
    plans.append(await _explain(connection, "mark" + suffix, MARK_ENQUEUED, ids, [0] * len(ids), [0] * len(ids)))
    return ids


async def _worker(connection: asyncpg.Connection, plans: list[Plan]) -> None:
    ids = await _group(connection, plans, "")
    await _settings(connection, POINT_LOOKUPS)
    n = len(ids)
    plans.append(await _explain(connection, "claim", CLAIM, ids, [1] * n, OWNER, 30.0, [0] * n))
    finish = [ids, [1] * n, ["succeeded"] * n, ['{"ok": true}'] * n, [None] * n, [None] * n, [None] * n, [None] * n]
    plans.append(await _explain(connection, "finish", FINISH, *finish, OWNER))
    await connection.execute("RESET ALL")


async def _scheduler(connection: asyncpg.Connection, plans: list[Plan]) -> None:
    ids = await _group(connection, plans, " (2)")
    n = len(ids)
    await _settings(connection, POINT_LOOKUPS)
    await connection.execute(CLAIM, ids, [1] * n, OWNER, -1.0, [0] * n)  # leases already expired
    await connection.execute("RESET ALL")
    # a backlog waits meanwhile, its messages confirmed: the reads must not go through it
    backlog = [r["id"] for r in await connection.fetch(INSERT, *_submission(WAITING))]
    await connection.execute(MARK_ENQUEUED, backlog, [0] * len(backlog), [0] * len(backlog))
    plans.append(await _explain(connection, "relay", UNPUBLISHED, 3600.0, 30.0, 1000))
    outboxes = [r["id"] for r in await connection.fetch(DUE_OUTBOXES, -1.0, 1000, 5000)]  # every one, grace or not
    plans.append(await _explain(connection, "relay outbox", OUTBOXED_ROWS, outboxes))
    plans.append(await _explain(connection, "outbox delete", DELETE_OUTBOX, outboxes))
    plans.append(await _explain(connection, "relay stale", CLEAR_STALE, 600.0, 1000, ["default"]))
    plans.append(await _explain(connection, "relay backlog", BACKLOG, 30.0))
    await connection.execute(LEASE_ORDER)
    plans.append(await _explain(connection, "reaper", EXPIRED, 500))
    await connection.execute("RESET ALL")
    reap = [ids, [1] * n, ["failed"] * n, [None] * n, ["lease expired"] * n, [OWNER] * n]
    plans.append(await _explain(connection, "reap", REAP, *reap))
    plans.append(await _explain(connection, "prune", PRUNE_JOBS, WEEK_S, 1000, None))


async def statement_plans(dsn: str) -> list[Plan]:
    """Every hot statement's plan against the database at `dsn`; nothing it writes is kept."""
    connection = await asyncpg.connect(dsn)
    plans: list[Plan] = []
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await _worker(connection, plans)
            await _scheduler(connection, plans)
        finally:
            await transaction.rollback()
    finally:
        await connection.close()
    return plans


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    for plan in asyncio.run(statement_plans(sys.argv[1])):
        print(plan.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
