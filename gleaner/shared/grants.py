"""Each service's PostgreSQL role and exactly the table privileges it needs (`gleaner migrate --grant`)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping

import asyncpg

from gleaner.shared.errors import MigrationError

SERVICES = ("gateway", "worker", "scheduler")
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_ALL = "SELECT, INSERT, UPDATE, DELETE"

# What the SQL of each service's code touches, no more: tests/ops/test_database_grants.py derives it from the
# modules each service imports and fails on any difference. The gateway fires schedules (a manual trigger,
# POST /scheduler/run) through gleaner.shared.scheduling (docs/scheduling.md) and runs none of the scheduler's
# duties, so it holds none of their privileges (pruning, reaping, dropping workers). Tables not listed for a role
# are out of its reach: the worker, which handles fetched content, never reads api_keys.
GRANTS: Mapping[str, Mapping[str, str]] = {
    "gateway": {
        "api_keys": "SELECT, INSERT, UPDATE",
        "dead_letters": "SELECT, UPDATE, DELETE",
        "idempotency_keys": "SELECT, INSERT",
        "gateway_secrets": "SELECT",
        "job_attempts": "SELECT",
        "job_dependencies": "SELECT, INSERT, UPDATE",
        "job_hours": "SELECT",
        "job_minutes": "SELECT",
        "job_outbox": _ALL,  # a row per submitting statement, deleted once confirmed (migration 0039)
        "jobs": _ALL,
        "kinds": "SELECT",
        "queue_pauses": _ALL,
        "scheduler_state": "SELECT, UPDATE",
        "schedules": _ALL,
        "scrape_results": "SELECT",
        "site_minutes": "SELECT",
        "site_status": "SELECT",
        "sites": "SELECT, INSERT, UPDATE",
        "webhook_deliveries": "SELECT, INSERT",
        "webhooks": "SELECT, INSERT, DELETE",
        "workers": "SELECT",
    },
    "worker": {
        "dead_letters": "SELECT, INSERT, DELETE",
        "idempotency_keys": "SELECT, DELETE",
        "job_attempts": "SELECT, INSERT",
        "job_dependencies": "SELECT, INSERT, UPDATE",
        "job_hours": "SELECT, DELETE",
        "job_minutes": "SELECT, DELETE",
        "job_outbox": "SELECT, UPDATE, DELETE",  # gleaner.shared.outbox (the worker's rows are marked, never in it)
        # INSERT: child jobs (ctx.submit)
        "jobs": _ALL,
        "kinds": "SELECT, INSERT, UPDATE",
        "queue_pauses": "SELECT",
        "scrape_bodies": "SELECT, INSERT, DELETE",
        "scrape_results": "SELECT, INSERT",
        "site_minutes": _ALL,
        "site_robots": "SELECT, INSERT, UPDATE",
        "site_slots": _ALL,
        "sites": "SELECT, UPDATE",
        "webhooks": "SELECT",
        "workers": _ALL,
    },
    "scheduler": {
        "dead_letters": "SELECT, DELETE",
        "idempotency_keys": "SELECT, DELETE",
        "job_attempts": "SELECT, INSERT",
        "job_dependencies": "SELECT, INSERT, UPDATE",  # a schedule's `then` job waits for the fire's jobs
        "job_hours": "SELECT, DELETE",
        "job_minutes": "SELECT, DELETE",
        "job_outbox": "SELECT, UPDATE, DELETE",  # the relay publishes what the gateway could not
        "jobs": _ALL,
        "scheduler_state": "SELECT, UPDATE",
        "schedules": _ALL,
        "site_minutes": "SELECT, DELETE",
        "webhook_deliveries": "SELECT, DELETE",
        "workers": "SELECT, DELETE",
    },
}
# The migration ledger, created by gleaner/shared/migrate.py itself (not by a migration) and written only by the owner
# (the migrating role). Every service reads its version at start and until it is current (gleaner/shared/startup.py:
# /readyz stays 503 while the schema is behind the code), so every role may SELECT it.
OWNER_ONLY = frozenset({"schema_migrations"})
READ_BY_EVERY_SERVICE = ("schema_migrations",)

SELECT_ROLE = "SELECT rolsuper, rolname = current_user AS is_current FROM pg_roles WHERE rolname = $1"
# Identifiers cannot be parameters: role names are checked against ROLE_NAME and quoted.
REVOKE_TABLES = "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"
REVOKE_SEQUENCES = "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}"
GRANT_SCHEMA = "GRANT USAGE ON SCHEMA public TO {role}"
GRANT_TABLE = "GRANT {privileges} ON TABLE {table} TO {role}"


def role_assignment(text: str) -> tuple[str, str]:
    """`SERVICE=ROLE` from the command line, e.g. `worker=gleaner_worker`."""
    service, _, role = text.partition("=")
    if service not in SERVICES:
        raise argparse.ArgumentTypeError(f"{text!r}: the service is one of {', '.join(SERVICES)}")
    if not ROLE_NAME.match(role):
        raise argparse.ArgumentTypeError(f"{text!r}: role names are lowercase letters, digits and _")
    return service, role


async def apply_grants(connection: asyncpg.Connection, roles: Mapping[str, str]) -> None:
    """Leave each service's role exactly its privileges: everything it held in the schema is revoked first.

    Run after every migration (the migration Job does), so new tables get their grants in the same deploy.
    """
    if len(set(roles.values())) != len(roles):
        raise MigrationError("each service needs a role of its own")
    for role in roles.values():
        await _check_role(connection, role)
    async with connection.transaction():
        for service, role in roles.items():
            quoted = f'"{role}"'
            for statement in (REVOKE_TABLES, REVOKE_SEQUENCES, GRANT_SCHEMA):
                await connection.execute(statement.format(role=quoted))
            for table, privileges in GRANTS[service].items():
                await connection.execute(GRANT_TABLE.format(privileges=privileges, table=table, role=quoted))
            for table in READ_BY_EVERY_SERVICE:
                await connection.execute(GRANT_TABLE.format(privileges="SELECT", table=table, role=quoted))


async def _check_role(connection: asyncpg.Connection, role: str) -> None:
    row = await connection.fetchrow(SELECT_ROLE, role)
    if row is None:
        raise MigrationError(f"role {role!r} does not exist: create it first (deploy/postgres/roles.sql)")
    if row["is_current"]:
        raise MigrationError(f"role {role!r} is the migrating role itself, which owns the tables: use another")
    if row["rolsuper"]:
        raise MigrationError(f"role {role!r} is a superuser, which no grant can restrict")
