"""Leader election: a PostgreSQL advisory lock held on a dedicated connection; losing the connection ends leadership."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics
from gleaner.shared.scheduling import scheduler_settings
from gleaner.shared.scheduling.schedule_store import CHANNEL
from gleaner.shared.scheduling.scheduler_status import STANDBY_RETRY_S, TICK_S

log = logging.getLogger(__name__)

RETRY_S = STANDBY_RETRY_S
QUERY_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
# server-side keepalives so a leader whose host vanished (no FIN) frees the lock within ~10 s
SERVER_SETTINGS = {
    "application_name": "gleaner-scheduler-leadership",
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}

TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
TICK = """
UPDATE scheduler_state
SET leader = $1, last_tick_at = now(),
    leader_since = CASE WHEN leader IS NOT DISTINCT FROM $1 AND NOT $2 THEN leader_since ELSE now() END
WHERE id = 1
"""
# what GET /scheduler/config shows: the settings of the scheduler that leads
RECORD_SETTINGS = """
UPDATE scheduler_state SET settings = $1::jsonb, settings_by = $2, settings_at = now() WHERE id = 1
"""
STEP_DOWN = "UPDATE scheduler_state SET leader = NULL WHERE id = 1 AND leader = $1"

Lead = Callable[[], Coroutine[Any, Any, None]]
Wake = Callable[[], None]


def lock_key(namespace: str) -> int:
    """The advisory lock key of a namespace's scheduler: a stable signed 64-bit number."""
    digest = hashlib.blake2b(f"gleaner.scheduler:{namespace}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def identity() -> str:
    """How this process shows up in `scheduler_state.leader`."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class LeadershipLost(Exception):
    """The dedicated connection failed: another scheduler may hold the lock now."""


class Leadership:
    """Campaign forever: standby until the lock is won, then run `lead` until the connection is lost."""

    def __init__(self, config: Config, metrics: Metrics, name: str, lead: Lead, wake: Wake) -> None:
        self.config = config
        self.metrics = metrics
        self.name = name
        self.key = lock_key(config.namespace)
        self._lead = lead
        self._wake = wake
        self.is_leader = False
        self.connection: asyncpg.Connection | None = None

    async def run(self) -> None:
        while True:
            try:
                await self._campaign()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, LeadershipLost) as exc:
                log.warning("scheduler leadership connection lost: %r", exc)
            finally:
                await self._drop()
            await asyncio.sleep(RETRY_S)

    async def _campaign(self) -> None:
        self.connection = await asyncpg.connect(
            self.config.database_url, server_settings=SERVER_SETTINGS, timeout=QUERY_TIMEOUT_S
        )
        await self._wait_for_lock(self.connection)
        await self._hold(self.connection)

    async def _wait_for_lock(self, connection: asyncpg.Connection) -> None:
        """Standby: try the lock every RETRY_S (the server frees it as soon as the leader's backend ends)."""
        while True:
            if await connection.fetchval(TRY_LOCK, self.key, timeout=QUERY_TIMEOUT_S):
                return
            await asyncio.sleep(RETRY_S)

    async def _hold(self, connection: asyncpg.Connection) -> None:
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_close(_: Any) -> None:
            if not lost.done():
                lost.set_exception(LeadershipLost("leadership connection closed"))

        connection.add_termination_listener(on_close)
        await self._tick(connection, first=True)
        settings = json.dumps(scheduler_settings.effective(self.config))
        await connection.execute(RECORD_SETTINGS, settings, self.name, timeout=QUERY_TIMEOUT_S)
        await connection.add_listener(CHANNEL, self._on_notify)
        self.is_leader = True
        self.metrics.leader.set(1)
        log.info("became scheduler leader", extra={"leader": self.name})
        tasks = [asyncio.ensure_future(lost), asyncio.create_task(self._ticker(connection), name="leader-tick")]
        tasks.append(asyncio.create_task(self._lead(), name="leader-duties"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise LeadershipLost("leader duties ended")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_notify(self, *_: Any) -> None:
        self._wake()

    async def _tick(self, connection: asyncpg.Connection, *, first: bool = False) -> None:
        await connection.execute(TICK, self.name, first, timeout=QUERY_TIMEOUT_S)
        self.metrics.scheduler_last_tick.set_to_current_time()

    async def _ticker(self, connection: asyncpg.Connection) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            await self._tick(connection)

    async def _drop(self) -> None:
        """Stop leading at once and close the connection, which releases the lock (a standby takes over)."""
        was_leader, self.is_leader = self.is_leader, False
        # only the leader exports these; a standby showing stale values would double dashboards and alerts
        self.metrics.leader.set(0)
        self.metrics.jobs_by_state.clear()
        self.metrics.jobs_ready.clear()
        self.metrics.relay_backlog.set(0)
        self.metrics.relay_oldest.set(0)
        connection, self.connection = self.connection, None
        if connection is None or connection.is_closed():
            return
        try:
            if was_leader:
                await connection.execute(STEP_DOWN, self.name, timeout=CLOSE_TIMEOUT_S)
            await connection.close(timeout=CLOSE_TIMEOUT_S)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            connection.terminate()

    async def close(self, task: asyncio.Task[None]) -> None:
        """Graceful shutdown: cancel the campaign; its cleanup steps down and releases the lock."""
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
