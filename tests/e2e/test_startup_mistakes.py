"""The first hour's common mistakes end in one line with the fix and exit code 2, never a traceback: a database
that does not exist or was never migrated, a port in use (a second `make run`), RabbitMQ unreachable; a schema
behind the code keeps /readyz at 503 until it is migrated. Each starts the real service with bad settings, on a
private port or database; the machine's services are never touched."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gleaner.shared.startup import expected_version
from tests.e2e.test_startup_refusals import run_service
from tests.readme_blocks import README
from tests.support.contract import checked_session
from tests.support.run_stack import RunStack
from tests.support.services import PG_ADMIN, dsn_for, unique
from tests.support.stack import GLEANER, Service, eventually, free_port


def the_one_line(err: str) -> str:
    """The service's last words: one plain line (the JSON log lines before it are its normal start)."""
    assert "Traceback" not in err, err
    plain = [line for line in err.strip().splitlines() if not line.startswith("{")]
    assert len(plain) == 1, err
    return plain[0]


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    name = unique("gleaner_t_empty_")
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield dsn_for(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize("service", ["gateway", "scheduler", "worker"])
async def test_a_database_that_does_not_exist_is_one_line_naming_it_and_the_fix(
    env: dict[str, str], service: str
) -> None:
    missing = unique("gleaner_t_missing_")
    code, err = await run_service(service, env, GLEANER_DATABASE_URL=dsn_for(missing))
    assert code == 2, err
    line = the_one_line(err)
    assert line.startswith(f'gleaner {service}: database "{missing}" does not exist')
    assert "make migrate" in line


async def test_migrate_names_a_missing_database_too(env: dict[str, str]) -> None:
    missing = unique("gleaner_t_missing_")
    code, err = await run_service("migrate", env, GLEANER_DATABASE_URL=dsn_for(missing))
    assert code == 2 and f'database "{missing}" does not exist' in the_one_line(err)


@pytest.mark.parametrize("service", ["gateway", "scheduler", "worker"])
async def test_a_database_never_migrated_is_one_line_saying_to_migrate(
    env: dict[str, str], empty_database: str, service: str
) -> None:
    code, err = await run_service(service, env, GLEANER_DATABASE_URL=empty_database)
    assert code == 2, err
    assert the_one_line(err) == (
        f"gleaner {service}: the database is not migrated (no Gleaner schema): run `gleaner migrate` "
        "(or `make migrate`) first"
    )


async def test_a_schema_behind_the_code_keeps_readyz_at_503_until_it_is_migrated(
    env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    latest = expected_version()
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow("DELETE FROM schema_migrations WHERE version = $1 RETURNING *", latest)
        assert row is not None
        gateway = Service("gateway", env, tmp_path)
        gateway.start()
        try:
            await eventually(lambda: readyz_is(gateway.url, 503), timeout_s=20, what="/readyz 503 while behind")
            await asyncio.sleep(1)  # it stays there: nothing migrated yet
            assert await readyz_is(gateway.url, 503)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                row["version"],
                row["name"],
                row["checksum"],
            )
            await eventually(lambda: readyz_is(gateway.url, 200), timeout_s=20, what="/readyz 200 once migrated")
        finally:
            gateway.stop()
    finally:
        await connection.close()
    assert f"this code needs {latest}" in gateway.log()


async def readyz_is(url: str, wanted: int) -> bool:
    try:
        async with checked_session() as session, session.get(f"{url}/readyz") as response:
            return response.status == wanted
    except OSError:
        return False


async def test_a_port_in_use_is_one_line_and_listening_is_never_claimed(env: dict[str, str]) -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        code, err = await run_service("gateway", env, GLEANER_HTTP_PORT=str(port))
    assert code == 2, err
    assert the_one_line(err) == (
        f"gleaner gateway: port {port} on 127.0.0.1 is in use: is another `make run` (or this service) running? "
        "Stop it, or set GLEANER_HTTP_PORT"
    )
    assert "listening on" not in err


async def test_a_second_make_run_while_one_runs_stops_with_the_port_in_use(env: dict[str, str]) -> None:
    first = RunStack(env)
    await first.start()
    try:
        await first.wait_for("Gleaner is running")
        second = RunStack(env, **{f"RUN_{name.upper()}_PORT": str(port) for name, port in first.ports.items()})
        await second.start()
        assert second.process is not None
        code = await asyncio.wait_for(second.process.wait(), 60)
        await second.stop()
        assert code == 2, second.output
        assert second.output.strip() == (
            f"make run: port {first.ports['gateway']} on 127.0.0.1 is in use: is another `make run` running? "
            "Stop it, or free the port"
        )
    finally:
        await first.stop()


async def test_rabbitmq_refusing_the_login_is_one_line_for_the_worker(env: dict[str, str]) -> None:
    code, err = await run_service("worker", env, GLEANER_AMQP_URL="amqp://guest:wrong-password@127.0.0.1:5672/")
    assert code == 2, err
    line = the_one_line(err)
    assert line.startswith("gleaner worker: RabbitMQ refused the connection (GLEANER_AMQP_URL=amqp://guest:***@")
    assert "wrong-password" not in err


async def test_rabbitmq_unreachable_is_one_line_for_the_worker(env: dict[str, str]) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    code, err = await run_service("worker", env, GLEANER_AMQP_URL=url, timeout_s="40")
    assert code == 2, err
    line = the_one_line(err)
    assert line.startswith("gleaner worker: cannot reach RabbitMQ (GLEANER_AMQP_URL=") and "make services" in line


@pytest.mark.parametrize("args", [("apikey", "list"), ("schedules", "apply", "examples/schedules.yaml", "--dry-run")])
async def test_the_commands_that_read_postgresql_directly_name_a_missing_database_in_one_line(
    env: dict[str, str], args: tuple[str, ...]
) -> None:
    missing = unique("gleaner_t_missing_")
    process = await asyncio.create_subprocess_exec(
        GLEANER,
        *args,
        cwd=README.parent,
        env={**os.environ, **env, "GLEANER_DATABASE_URL": dsn_for(missing)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, err.decode()
    assert the_one_line(err.decode()).startswith(f'gleaner {args[0]}: database "{missing}" does not exist')
