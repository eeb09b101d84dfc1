"""Paused queues: the worker reads them at start, with every heartbeat and on a `queues.changed` event."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

PAUSED = "SELECT queue FROM queue_pauses"


async def paused_queues(pool: asyncpg.Pool) -> set[str]:
    return {row["queue"] for row in await pool.fetch(PAUSED)}


def reconciler(
    pool: asyncpg.Pool, apply: Callable[[set[str]], Awaitable[None]]
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A call that makes the consumer match the paused queues in the database now."""

    async def reconcile() -> None:
        await apply(await paused_queues(pool))

    return reconcile
