"""This worker's kinds in the `kinds` table: written at start and with every heartbeat, read by the gateway.

A kind's row outlives its workers (jobs of a kind with no worker alive wait); the last worker to register a kind
sets its queue, description, schema and privileged flag, so a redeployed handler's new schema takes effect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import orjson

from gleaner.handlers import KindSpec

# one statement per beat, however many kinds; `changed_at` moves only when what the gateway checks changed
REGISTER = """
INSERT INTO kinds AS k (name, queue, queues, description, payload_schema, privileged)
SELECT name, queue, $3::text[], description, payload_schema::jsonb, privileged
FROM unnest($1::text[], $2::text[], $4::text[], $5::text[], $6::boolean[])
     AS t(name, queue, description, payload_schema, privileged)
ON CONFLICT (name) DO UPDATE SET
    queue = EXCLUDED.queue, queues = EXCLUDED.queues, description = EXCLUDED.description,
    payload_schema = EXCLUDED.payload_schema, privileged = EXCLUDED.privileged, last_seen_at = now(),
    changed_at = CASE
        WHEN (k.queue, k.description, k.payload_schema, k.privileged)
             IS DISTINCT FROM (EXCLUDED.queue, EXCLUDED.description, EXCLUDED.payload_schema, EXCLUDED.privileged)
        THEN now() ELSE k.changed_at END
"""


@dataclass(frozen=True, slots=True)
class KindRegistration:
    """The columns of this worker's kinds, ready to send; `register()` upserts them all."""

    pool: asyncpg.Pool
    queues: tuple[str, ...]
    names: list[str]
    default_queues: list[str | None]
    descriptions: list[str | None]
    schemas: list[str | None]
    privileged: list[bool]

    @classmethod
    def of(cls, pool: asyncpg.Pool, specs: Iterable[KindSpec], queues: tuple[str, ...]) -> KindRegistration:
        kinds = list(specs)
        return cls(
            pool,
            queues,
            [k.name for k in kinds],
            [k.queue for k in kinds],
            [k.description for k in kinds],
            [orjson.dumps(k.schema).decode() if k.schema is not None else None for k in kinds],
            [k.privileged for k in kinds],
        )

    async def register(self) -> None:
        await self.pool.execute(
            REGISTER,
            self.names,
            self.default_queues,
            list(self.queues),
            self.descriptions,
            self.schemas,
            self.privileged,
        )
