"""Fixtures shared by integration and e2e tests: a fresh database, a unique namespace, a service stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gleaner.shared.config import Config
from tests.support.services import database_fixture, delete_topology, require_services, test_env, unique
from tests.support.stack import Api, Stack


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async for url in database_fixture():
        yield url


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    require_services()
    name = unique("t")
    yield name


@pytest.fixture
def extra_env() -> dict[str, str]:
    """Variables a test module adds to its stack's environment (overridden per module)."""
    return {}


@pytest.fixture
async def env(database_url: str, namespace: str, extra_env: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    # the topology is deleted with the same environment, so queues a module adds are removed too
    environment = test_env(database_url, namespace, **extra_env)
    yield environment
    await delete_topology(Config.from_env(environment))


@pytest.fixture
def config(env: dict[str, str]) -> Config:
    return Config.from_env(env)


@pytest.fixture
async def stack(env: dict[str, str], tmp_path: Path) -> AsyncIterator[Stack]:
    services = Stack(env, tmp_path)
    yield services
    services.stop_all()


@pytest.fixture
async def api_factory() -> AsyncIterator[type[Api]]:
    clients: list[Api] = []

    class Tracked(Api):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            clients.append(self)

    yield Tracked
    for client in clients:
        await client.close()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`) the fault scenarios run one after another on one worker: each
    starts its own RabbitMQ node and PostgreSQL cluster, and two at once would starve each other's timeouts."""
    for item in items:
        if item.get_closest_marker("faults") is not None:
            item.add_marker(pytest.mark.xdist_group("faults"))
