"""The kinds table between workers and gateways: what a worker registers is what a gateway checks submissions by."""

from __future__ import annotations

import asyncpg

from gleaner import JobContext, JsonInput, Registry
from gleaner.services.gateway.kind_book import KindBook
from gleaner.services.worker.kind_registration import KindRegistration
from gleaner.shared.urlguard import Policy

QUEUES = ("default", "scraping")


async def handler(ctx: JobContext) -> JsonInput:
    return None


def plugin(schema_max: int = 10, *, privileged: bool = False) -> Registry:
    registry = Registry()
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": schema_max}}}
    registry.add("acme.count", handler, queue="scraping", schema=schema, privileged=privileged)
    return registry


async def test_a_kind_a_worker_registers_after_the_gateway_read_the_table_is_known_at_its_first_submission(
    db: asyncpg.Pool,
) -> None:
    book = KindBook(db, QUEUES, Policy())
    assert "acme.count" not in (await book.refresh()).known
    await KindRegistration.of(db, plugin(), ("scraping",)).register()

    rules = await book.knowing(["acme.count"])

    assert "acme.count" in rules.known and rules.queue_of("acme.count", "default") == "scraping"
    assert rules.payload_errors("acme.count", {"n": 11}) == [("n", "11 is greater than the maximum of 10")]
    assert not rules.is_privileged("acme.count")


async def test_a_worker_registering_a_new_schema_or_the_privileged_flag_changes_the_rules_and_changed_at(
    db: asyncpg.Pool,
) -> None:
    book = KindBook(db, QUEUES, Policy())
    await KindRegistration.of(db, plugin(), ("scraping",)).register()
    first = await db.fetchval("SELECT changed_at FROM kinds WHERE name = 'acme.count'")
    await KindRegistration.of(db, plugin(), ("scraping",)).register()  # a heartbeat: nothing changed
    assert await db.fetchval("SELECT changed_at FROM kinds WHERE name = 'acme.count'") == first

    await KindRegistration.of(db, plugin(20, privileged=True), ("scraping",)).register()
    rules = await book.refresh()

    assert await db.fetchval("SELECT changed_at FROM kinds WHERE name = 'acme.count'") > first
    assert rules.payload_errors("acme.count", {"n": 11}) == [] and rules.is_privileged("acme.count")


async def test_a_kinds_queue_the_gateway_does_not_have_is_not_used_as_its_default(db: asyncpg.Pool) -> None:
    await KindRegistration.of(db, plugin(), ("scraping",)).register()
    rules = await KindBook(db, ("default",), Policy()).refresh()
    assert rules.queue_of("acme.count", "default") == "default"
