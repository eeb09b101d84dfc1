"""Real RabbitMQ and PostgreSQL for tests: availability, a fresh database and a unique namespace each."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest

from gleaner.services.worker.handlers import load_registry
from gleaner.services.worker.kind_registration import KindRegistration
from gleaner.shared.amqp import Topology, declared_names
from gleaner.shared.config import Config
from gleaner.shared.migrate import migrate

PG_ADMIN = os.environ.get("GLEANER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("GLEANER_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN_TOKEN = "test-admin-token-0123456789"


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def require_services() -> None:
    """Skip when RabbitMQ or PostgreSQL is down, except under CI, where that is a failure."""
    missing = [name for name, port in (("PostgreSQL", 5432), ("RabbitMQ", 5672)) if not port_open(port)]
    if missing:
        message = f"{' and '.join(missing)} not reachable on 127.0.0.1"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have them)")
        pytest.skip(message)


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def dsn_for(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def create_database(template: str = "") -> str:
    """A new database, migrated; copied from `template` first when given (no one may be connected to it)."""
    name = unique("gleaner_t_")
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        # a loaded history is copied file by file: the default strategy writes it all to the WAL, and its checkpoints
        # then ran through the benchmark that follows (gigabytes at 10,000,000 rows)
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    await migrate(dsn_for(name))
    await register_builtin_kinds(dsn_for(name))
    return name


async def register_builtin_kinds(dsn: str, modules: tuple[str, ...] = ()) -> None:
    """The built-in kinds (and those of `modules`), as a worker that ran once left them: a gateway alone accepts
    `noop`."""
    connection = await asyncpg.connect(dsn)
    try:
        served = load_registry(Config(handler_modules=modules))
        await KindRegistration.of(connection, served, Config().consumed_queues).register()  # type: ignore[arg-type]
    finally:
        await connection.close()


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_topology(config: Config) -> None:
    """Remove every queue and exchange of a test namespace so the broker does not fill up."""
    exchanges, queues = declared_names(Topology.from_config(config))
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for name in queues:
            await channel.queue_delete(name)
        for name in exchanges:
            await channel.exchange_delete(name)
    finally:
        await connection.close()


async def database_fixture() -> AsyncIterator[str]:
    require_services()
    name = await create_database()
    try:
        yield dsn_for(name)
    finally:
        await drop_database(name)


def test_env(database_url: str, namespace: str, **overrides: str) -> dict[str, str]:
    """The GLEANER_* environment of a test stack: its own database and namespace, fast timings."""
    env = {
        "GLEANER_DATABASE_URL": database_url,
        "GLEANER_AMQP_URL": AMQP_URL,
        "GLEANER_NAMESPACE": namespace,
        "GLEANER_ADMIN_TOKEN": ADMIN_TOKEN,
        "GLEANER_DELAY_UNIT_MS": "100",
        "GLEANER_DELAY_LEVELS": "10",
        "GLEANER_LEASE_S": "3",
        "GLEANER_RELAY_INTERVAL_S": "0.2",
        "GLEANER_RELAY_GRACE_S": "1",
        "GLEANER_REAPER_INTERVAL_S": "0.5",
        "GLEANER_SHUTDOWN_GRACE_S": "5",
        "GLEANER_LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env
