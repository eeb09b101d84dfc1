"""Paused queues: the consumer reads them at start, with every heartbeat and on a `queues.changed` event."""

from __future__ import annotations

import asyncpg

PAUSED = "SELECT queue FROM queue_pauses"


async def paused_queues(pool: asyncpg.Pool) -> set[str]:
    return {row["queue"] for row in await pool.fetch(PAUSED)}
