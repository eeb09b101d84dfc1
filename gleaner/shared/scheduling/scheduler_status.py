"""The scheduler as a whole, as the API shows and changes it: leader, global pause, last tick, backlog, lag."""

from __future__ import annotations

import asyncpg

from gleaner.shared.db import Connection
from gleaner.shared.scheduling.schedule_store import notify

# the leader records a tick this often (gleaner.services.scheduler.leadership)
TICK_S = 1.0
# a standby tries the leader's lock this often
STANDBY_RETRY_S = 1.0
# the longest wait between firing passes; the loop wakes sooner for the next due schedule or a schedule change
FIRE_INTERVAL_S = 1.0
# a leader that has not ticked for this long is presumed gone (a standby takes over within a few seconds)
STALE_TICK_S = 5 * TICK_S

# due_backlog is counted now rather than read from the row, so it is right even with no leader
STATUS = """
SELECT st.leader, st.leader_since, st.paused, st.last_tick_at, st.last_fire_lag_s,
       st.last_tick_at IS NOT NULL AND st.last_tick_at > now() - make_interval(secs => $1) AS leader_alive,
       (SELECT count(*) FROM schedules WHERE enabled AND NOT paused AND next_fire_at <= now()) AS due_backlog,
       (SELECT min(next_fire_at) FROM schedules WHERE enabled AND NOT paused) AS next_fire_at,
       (SELECT count(*) FROM schedules) AS schedules,
       (SELECT count(*) FROM schedules WHERE enabled AND NOT paused) AS active_schedules
FROM scheduler_state AS st WHERE st.id = 1
"""
SETTINGS = "SELECT settings, settings_by, settings_at FROM scheduler_state WHERE id = 1"
SET_PAUSED = "UPDATE scheduler_state SET paused = $1 WHERE id = 1"


async def status(connection: Connection | asyncpg.Pool) -> asyncpg.Record:
    row: asyncpg.Record | None = await connection.fetchrow(STATUS, STALE_TICK_S)
    assert row is not None, "migration 0001 inserts the scheduler_state row"
    return row


async def set_paused(pool: asyncpg.Pool, paused: bool) -> None:
    """Pause or resume every schedule at once; the leader is woken so a resume fires what is due at once."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(SET_PAUSED, paused)
        await notify(connection)
