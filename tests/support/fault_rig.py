"""A private broker and database plus, per scenario, a fresh database, namespace and service stack on them.

`FaultRig` owns the private RabbitMQ node and PostgreSQL cluster (shared by the scenarios of a run);
`rig.scene(name)` gives a `Scene`: its own database (migrated, with the recording table), its own namespace,
services started on demand with the recording handlers loaded, a pool for assertions, and teardown.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from gleaner.shared.db import init_connection
from tests.support import private_broker, private_postgres, recording
from tests.support.contract import checked_session
from tests.support.private_broker import PrivateRabbit
from tests.support.private_postgres import PrivatePostgres
from tests.support.services import register_builtin_kinds, test_env, unique
from tests.support.stack import Api, Service, Stack

# no management plugin on the private node: it would cost startup time, and no scenario needs it
PRIVATE_ENV = {"GLEANER_RABBITMQ_MANAGEMENT_URL": "off", **recording.SERVICE_ENV}


@dataclass(slots=True)
class Scene:
    """One scenario's database, namespace and services on the rig's private broker and cluster."""

    rig: FaultRig
    name: str
    database: str
    env: dict[str, str]
    stack: Stack
    db: asyncpg.Pool
    apis: list[Api] = field(default_factory=list)

    async def start(self, command: str, name: str | None = None, **env: str) -> Service:
        return await self.stack.start(command, name=name, **env)

    def api(self, service: Service) -> Api:
        client = Api(service.url)
        self.apis.append(client)
        return client

    async def executions(self) -> recording.Executions:
        return await recording.executions(self.db)

    def close_db(self) -> None:
        """Close the scene's pool before the cluster goes away (else it keeps trying to refill itself)."""
        self.db.terminate()

    async def reopen_db(self) -> None:
        """A fresh pool once the cluster is back."""
        self.db.terminate()
        self.db = await _pool(self.env["GLEANER_DATABASE_URL"])

    async def close(self) -> None:
        for client in self.apis:
            await client.close()
        self.stack.stop_all()
        self.db.terminate()
        await self.rig.postgres.drop_database(self.database)


@dataclass(slots=True)
class FaultRig:
    """The private services of a run; scenarios take scenes from it."""

    rabbit: PrivateRabbit
    postgres: PrivatePostgres
    log_root: Path

    @contextlib.asynccontextmanager
    async def scene(self, name: str, **env: str) -> AsyncIterator[Scene]:
        await self.rabbit.ensure_running()
        await self.postgres.ensure_running()
        database = unique("gleaner_f_")
        dsn = await self.postgres.create_database(database)
        await register_builtin_kinds(dsn, (recording.MODULE,))
        environment = test_env(dsn, unique("f"), GLEANER_AMQP_URL=self.rabbit.amqp_url, **{**PRIVATE_ENV, **env})
        log_dir = self.log_root / f"{name}-{database}"
        log_dir.mkdir(parents=True)
        pool = await _pool(dsn)
        await recording.install(pool)
        scene = Scene(self, name, database, environment, Stack(environment, log_dir), pool)
        try:
            yield scene
        finally:
            await scene.close()


async def _pool(dsn: str) -> asyncpg.Pool:
    # JSON codecs as the services set them, so scenarios can hand the pool to service code
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, init=init_connection)
    assert pool is not None
    return pool


def require_private_services() -> None:
    """Skip when a private node or cluster cannot be started here, except under CI, where that is a failure."""
    missing = [why for why in (private_broker.available(), private_postgres.available()) if why]
    if missing:
        message = "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have them)")
        pytest.skip(message)


@contextlib.contextmanager
def fault_rig(log_root: Path | None = None) -> Iterator[FaultRig]:
    """Start a private node and cluster (about 5-10 s), and remove both afterwards."""
    root = log_root or Path(tempfile.mkdtemp(prefix="gleaner-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    with private_broker.private_rabbit() as rabbit, private_postgres.private_postgres() as postgres:
        yield FaultRig(rabbit, postgres, root)


async def metric(service: Service, name: str) -> float:
    """The sum of a metric's samples on a service's /metrics (0 when absent)."""
    async with checked_session() as session, session.get(f"{service.url}/metrics") as response:
        text = await response.text()
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


async def get_status(url: str) -> tuple[int, dict[str, object]]:
    """GET a JSON endpoint: (status, body); (0, {}) when the service does not answer."""
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with checked_session(timeout=timeout) as session, session.get(url) as response:
            return response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return 0, {}
