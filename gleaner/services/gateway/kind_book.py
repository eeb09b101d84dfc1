"""What submissions are checked against: the kinds workers registered, kept fresh from the `kinds` table.

The gateway imports no handler code: the table is the whole truth. The book reloads it every few seconds (one
small statement; payload schemas are compiled again only when they changed), and at once when a submission
names a kind it does not know yet (a worker that just registered one); concurrent misses share one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import asyncpg

from gleaner.shared.kind_rules import KindRules
from gleaner.shared.kind_table import RULES, rules_of
from gleaner.shared.payload_schemas import SchemaChecks
from gleaner.shared.urlguard import Policy

log = logging.getLogger(__name__)

REFRESH_S = 5.0


class KindBook:
    """The registered kinds as `KindRules`, kept fresh from the `kinds` table."""

    def __init__(self, pool: asyncpg.Pool, queues: Iterable[str], policy: Policy) -> None:
        self._pool = pool
        self._queues = frozenset(queues)
        self._schemas = SchemaChecks(policy)
        self.rules = KindRules(frozenset())
        self._running: asyncio.Task[KindRules] | None = None
        self._queued: asyncio.Task[KindRules] | None = None

    async def refresh(self) -> KindRules:
        """The table as read by a statement that started after this call: callers arriving while one is queued
        share it, so a burst of unknown kinds costs one read, and a kind registered before the call is seen."""
        if self._queued is None:
            self._queued = asyncio.ensure_future(self._after(self._running))
        return await asyncio.shield(self._queued)

    async def _after(self, running: asyncio.Task[KindRules] | None) -> KindRules:
        if running is not None:
            with contextlib.suppress(Exception):
                await running
        self._running, self._queued = self._queued, None
        try:
            return await self._load()
        finally:
            self._running = None

    async def _load(self) -> KindRules:
        rows = await self._pool.fetch(RULES)
        self._schemas.forget_except([r["payload_schema"] for r in rows if r["payload_schema"] is not None])
        self.rules = rules_of(rows, self._queues, self._schemas)
        return self.rules

    async def knowing(self, kinds: Iterable[str]) -> KindRules:
        """The rules, read again first when one of `kinds` is unknown (a worker may have just registered it)."""
        rules = self.rules
        if any(kind not in rules.known for kind in kinds):
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                rules = await self.refresh()
        return rules


async def follow_kinds(book: KindBook) -> None:
    """Reload the kinds every REFRESH_S until cancelled; a failed read keeps the last rules."""
    while True:
        await asyncio.sleep(REFRESH_S)
        try:
            await book.refresh()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not reload the job kinds: %r", exc)
