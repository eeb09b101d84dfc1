"""Graceful shutdown: on SIGTERM turn unready, stop consuming, let jobs finish within the grace, hand back the rest."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from gleaner.services.worker.consumer import Consumer
from gleaner.services.worker.retry import REASON_SHUTDOWN
from gleaner.services.worker.runner import RunningJobs
from gleaner.shared.ops import spawn

log = logging.getLogger(__name__)

# after the grace: how long handed-back flows get to write their rows and requeue their messages
HANDBACK_TIMEOUT_S = 10.0


class Drainer:
    """Runs the drain once, whoever asks first: the signal handler or the consumer's cleanup step."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.draining = False
        self._task: asyncio.Task[None] | None = None
        self._consumer: Consumer | None = None
        self._running: RunningJobs | None = None

    def attach(self, consumer: Consumer, running: RunningJobs) -> None:
        self._consumer, self._running = consumer, running

    async def drain(self) -> None:
        self.draining = True
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="drain")
        await asyncio.shield(self._task)

    async def _drain(self) -> None:
        if self._consumer is None or self._running is None:
            return
        await self._consumer.stop_consuming()
        if await self._consumer.wait_idle(self.grace_s):
            log.info("drained: every in-flight job finished")
            return
        handed = self._running.cancel_all(REASON_SHUTDOWN)
        log.info("grace period over: handing back %d running jobs", handed)
        if not await self._consumer.wait_idle(HANDBACK_TIMEOUT_S):
            log.warning("some flows did not end; the broker requeues their messages when the channel closes")

    def on_signal(self) -> None:
        """SIGTERM/SIGINT: drain first (while the HTTP server still answers 503 on /readyz), then exit."""
        if self.draining:
            return
        log.info("shutting down: draining")
        spawn(self._drain_then_exit(), "drain-then-exit")

    def recycle(self, reason: str) -> None:
        """A recycling limit was reached: drain as on SIGTERM, then exit 0 for the supervisor to start a new worker."""
        if self.draining:
            return
        self.draining = True
        log.info("recycling this worker: %s; draining, then exiting 0 for its supervisor to restart it", reason)
        spawn(self._drain_then_exit(), "recycle")

    async def _drain_then_exit(self) -> None:
        await self.drain()
        asyncio.get_running_loop().call_soon(_graceful_exit)

    def install(self) -> None:
        """Replace aiohttp's signal handlers (installed before startup) with ours."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.on_signal)


def _graceful_exit() -> None:
    # run_app catches GracefulExit and unwinds the cleanup_ctx steps, as after its own signal handler
    raise web.GracefulExit()
