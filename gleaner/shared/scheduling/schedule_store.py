"""Schedules in PostgreSQL: create, replace, pause, resume, delete, read; every change wakes the firing loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from gleaner.shared.db import Connection
from gleaner.shared.scheduling.definitions import Definition
from gleaner.shared.scheduling.schedule_rows import first_slot, skip_missed

# the firing loop LISTENs here; the payload is the schedule id (or empty)
CHANNEL = "gleaner_schedules"

SELECT = """
SELECT s.*, j.state AS last_job_state
FROM schedules AS s LEFT JOIN jobs AS j ON j.id = s.last_job_id
"""

INSERT = """
INSERT INTO schedules (name, kind, interval_s, jitter, cron, timezone, at, job, misfire, overlap, misfire_grace_s,
                       enabled, description, source, anchor, next_slot_at, next_fire_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
RETURNING id
"""

UPDATE = """
UPDATE schedules SET name = $2, kind = $3, interval_s = $4, jitter = $5, cron = $6, timezone = $7, at = $8, job = $9,
    misfire = $10, overlap = $11, misfire_grace_s = $12, enabled = $13, description = $14, source = $15, anchor = $16,
    next_slot_at = $17, next_fire_at = $18, updated_at = now()
WHERE id = $1
RETURNING id
"""

ID_BY_NAME = "SELECT id FROM schedules WHERE name = $1"

TIMING = ("kind", "interval_s", "jitter", "cron", "timezone", "at", "enabled")


async def database_now(connection: Connection) -> datetime:
    """Due times are judged by the database clock."""
    now: datetime = await connection.fetchval("SELECT now()")
    return now


async def get(connection: Connection, schedule_id: int) -> asyncpg.Record | None:
    return await connection.fetchrow(SELECT + " WHERE s.id = $1", schedule_id)


async def get_locked(connection: Connection, schedule_id: int) -> asyncpg.Record | None:
    """The schedule, locked until the transaction ends (an edit does not race the firing loop's claim)."""
    return await connection.fetchrow(SELECT + " WHERE s.id = $1 FOR UPDATE OF s", schedule_id)


async def get_by_name(connection: Connection, name: str) -> asyncpg.Record | None:
    return await connection.fetchrow(SELECT + " WHERE s.name = $1", name)


async def list_all(connection: Connection, *, after_id: int = 0, limit: int = 1000) -> list[asyncpg.Record]:
    return list(await connection.fetch(SELECT + " WHERE s.id > $1 ORDER BY s.id LIMIT $2", after_id, limit))


async def create(connection: Connection, definition: Definition, source: str = "api") -> int:
    """Insert a schedule waiting for its first slot after now; raises UniqueViolationError on a taken name."""
    now = await database_now(connection)
    columns = definition.columns()
    slot, fire = first_slot({**columns, "anchor": now}, now)
    schedule_id: int = await connection.fetchval(INSERT, *_values(columns), source, now, slot, fire)
    await notify(connection, schedule_id)
    return schedule_id


async def replace(
    connection: Connection, current: asyncpg.Record, definition: Definition, source: str = "api"
) -> int | None:
    """Overwrite a schedule; a timing change (or re-enabling) restarts its slots from now, else they are kept."""
    columns = definition.columns()
    if any(current[key] != columns[key] for key in TIMING):
        now = await database_now(connection)
        anchor, (slot, fire) = now, first_slot({**columns, "anchor": now}, now)
    else:
        anchor, slot, fire = current["anchor"], current["next_slot_at"], current["next_fire_at"]
    schedule_id: int | None = await connection.fetchval(
        UPDATE, current["id"], *_values(columns), source, anchor, slot, fire
    )
    await notify(connection, current["id"])
    return schedule_id


async def pause(connection: Connection, schedule_id: int) -> bool:
    status: str = await connection.execute(
        "UPDATE schedules SET paused = true, updated_at = now() WHERE id = $1", schedule_id
    )
    await notify(connection, schedule_id)
    return status.endswith(" 1")


async def resume(connection: Connection, row: asyncpg.Record) -> None:
    """Resume: `fire_once` fires one catch-up job for the slots missed while paused, `skip` counts and skips them."""
    now = await database_now(connection)
    slot: datetime | None = row["next_slot_at"]
    if row["misfire"] == "skip" and slot is not None and slot <= now:
        skipped = skip_missed(dict(row), now)
        await connection.execute(
            "UPDATE schedules SET paused = false, next_slot_at = $2, next_fire_at = $3, "
            "misfire_skipped_count = misfire_skipped_count + $4, updated_at = now() WHERE id = $1",
            row["id"],
            *skipped,
        )
    else:
        await connection.execute("UPDATE schedules SET paused = false, updated_at = now() WHERE id = $1", row["id"])
    await notify(connection, row["id"])


async def delete(connection: Connection, schedule_id: int) -> bool:
    status: str = await connection.execute("DELETE FROM schedules WHERE id = $1", schedule_id)
    await notify(connection, schedule_id)
    return status.endswith(" 1")


async def notify(connection: Connection, schedule_id: int | None = None) -> None:
    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, str(schedule_id or ""))


def _values(columns: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("name", "kind", "interval_s", "jitter", "cron", "timezone", "at", "job", "misfire", "overlap")
    return (*(columns[k] for k in keys), columns["misfire_grace_s"], columns["enabled"], columns["description"])
