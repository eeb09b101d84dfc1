"""The kinds workers registered (the `kinds` table) as the `KindRules` submissions and schedule files are checked
against; the gateway and `gleaner schedules apply` read them the same way and never import handler code."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from gleaner.shared.db import Connection
from gleaner.shared.kind_rules import KindRules
from gleaner.shared.payload_schemas import SchemaChecks
from gleaner.shared.urlguard import Policy

RULES = "SELECT name, queue, payload_schema, privileged FROM kinds"


def rules_of(rows: Iterable[asyncpg.Record], queues: Iterable[str], schemas: SchemaChecks) -> KindRules:
    """The rules of the table's rows; a kind's own queue counts only when this deployment has it."""
    rows, configured = list(rows), frozenset(queues)
    return KindRules(
        known=frozenset(r["name"] for r in rows),
        privileged=frozenset(r["name"] for r in rows if r["privileged"]),
        checks={r["name"]: schemas.check_of(r["payload_schema"]) for r in rows if r["payload_schema"]},
        queues={r["name"]: r["queue"] for r in rows if r["queue"] in configured},
    )


async def read_rules(connection: Connection, queues: Iterable[str], policy: Policy) -> KindRules:
    return rules_of(await connection.fetch(RULES), queues, SchemaChecks(policy))
