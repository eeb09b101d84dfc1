"""This worker's row in `workers`: written at start and with every heartbeat, marked stopped at shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)

ANNOUNCE = """
INSERT INTO workers (id, queues, concurrency, running, kinds) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET queues = EXCLUDED.queues, concurrency = EXCLUDED.concurrency,
    running = EXCLUDED.running, kinds = EXCLUDED.kinds, last_seen_at = now(), stopped_at = NULL
"""
STOPPED = "UPDATE workers SET running = 0, last_seen_at = now(), stopped_at = now() WHERE id = $1"


@dataclass(frozen=True, slots=True)
class Presence:
    pool: asyncpg.Pool
    worker_id: str
    queues: tuple[str, ...]
    concurrency: int
    # the kinds it serves: GET /kinds counts each kind's alive workers from them
    kinds: tuple[str, ...] = ()

    async def announce(self, running: int) -> None:
        await self.pool.execute(
            ANNOUNCE, self.worker_id, list(self.queues), self.concurrency, running, list(self.kinds)
        )

    async def stopped(self) -> None:
        """Best effort: a worker that cannot say so is seen as gone once its heartbeats stop."""
        try:
            await self.pool.execute(STOPPED, self.worker_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not mark the worker stopped: %r", exc)
