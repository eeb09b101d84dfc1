"""Webhooks at each gateway replica: match the hub's events against the webhooks, insert one delivery job per
match. Every replica sees every event; `webhook_deliveries` (primary key: webhook and event) lets one insert win."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from gleaner.services.gateway import job_store
from gleaner.services.gateway.event_filters import EventFilter, parse_filter
from gleaner.services.gateway.job_store import NewJob
from gleaner.shared import events, webhooks
from gleaner.shared.config import Config
from gleaner.shared.ops import spawn
from gleaner.shared.publisher import Publisher
from gleaner.shared.submission import JobSpec

log = logging.getLogger(__name__)

REFRESH_S = 5.0
DELIVERY_ATTEMPTS = 8
DELIVERY_TIMEOUT_S = 30.0
ALL_HOOKS = "SELECT id, filter FROM webhooks ORDER BY id"
CLAIM_DELIVERIES = """
INSERT INTO webhook_deliveries (webhook_id, event_key)
SELECT * FROM unnest($1::bigint[], $2::text[])
ON CONFLICT DO NOTHING
RETURNING webhook_id, event_key
"""


@dataclass(frozen=True, slots=True)
class Hook:
    id: int
    wanted: EventFilter


class WebhookFanout:
    """Holds the webhooks (re-read every few seconds, and at once after a change here) and writes deliveries."""

    def __init__(self, pool: asyncpg.Pool, config: Config, publisher: Publisher) -> None:
        self._pool = pool
        self._config = config
        self._publisher = publisher
        self.hooks: list[Hook] = []

    async def refresh(self) -> None:
        rows = await self._pool.fetch(ALL_HOOKS)
        self.hooks = [Hook(r["id"], parse_filter(orjson.loads(r["filter"]))[0]) for r in rows]

    async def follow(self) -> None:
        """Re-read the webhooks every REFRESH_S (changes made at another replica arrive this way)."""
        while True:
            with contextlib.suppress(Exception):
                await self.refresh()
            await asyncio.sleep(REFRESH_S)

    def offer(self, happened: Sequence[events.Event]) -> None:
        """Never about deliveries themselves: a webhook on `job.*` would otherwise feed itself forever."""
        matches = [
            (hook.id, event)
            for event in happened
            if event["kind"] != webhooks.KIND
            for hook in self.hooks
            if hook.wanted.matches(event)
        ]
        if matches:
            spawn(self._deliver(matches), "webhook-deliveries")

    async def _deliver(self, matches: list[tuple[int, events.Event]]) -> None:
        keys = [webhooks.event_key(event) for _, event in matches]
        async with self._pool.acquire() as connection, connection.transaction():
            claimed = await connection.fetch(CLAIM_DELIVERIES, [hook_id for hook_id, _ in matches], keys)
            won = {(r["webhook_id"], r["event_key"]) for r in claimed}
            items = [
                self._job(hook_id, event)
                for (hook_id, event), key in zip(matches, keys, strict=True)
                if (hook_id, key) in won
            ]
            rows = [r for r in await job_store.insert_jobs(connection, items) if r is not None] if items else []
        self._publisher.add(rows)

    def _job(self, hook_id: int, event: events.Event) -> NewJob:
        config = self._config
        spec = JobSpec(
            kind=webhooks.KIND,
            payload={"webhook_id": hook_id, "event": event},
            queue=config.default_queue,
            priority=0,
            max_attempts=DELIVERY_ATTEMPTS,
            timeout_s=DELIVERY_TIMEOUT_S,
            retry_base_s=config.default_retry_base_s,
            retry_cap_s=config.default_retry_cap_s,
            run_at=None,
            delay_s=None,
            site=None,
            dedupe_key=None,
        )
        return NewJob(spec, None)
