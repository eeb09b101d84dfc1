"""RabbitMQ users as deploy/rabbitmq/definitions.json defines them: the migrate user declares the topology, the
service users run jobs without being able to configure (and so delete) any of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from gleaner.shared.amqp import Broker, Topology, TopologyMissing, declare, declared_names
from gleaner.shared.config import Config
from tests.e2e.test_lifecycle import wait_state
from tests.support import services
from tests.support.rabbitmq_users import Accounts, declared_objects, defined_accounts
from tests.support.stack import Api, Stack, eventually

SERVICES = ("gateway", "worker", "scheduler")
# the permissions name the `gleaner` namespace; the vhost the test creates keeps it apart from everyone else's
NAMESPACE = "gleaner"


@pytest.fixture
async def accounts() -> AsyncIterator[Accounts]:
    async with defined_accounts(("migrate", *SERVICES)) as made:
        yield made


@pytest.fixture
def base_env(database_url: str) -> dict[str, str]:
    return services.test_env(database_url, NAMESPACE, GLEANER_AMQP_DECLARE="0", GLEANER_QUEUES="default,slow")


def env_of(base_env: dict[str, str], accounts: Accounts, service: str) -> dict[str, str]:
    return {**base_env, "GLEANER_AMQP_URL": accounts.amqp_url(service)}


async def test_without_the_topology_a_service_that_may_not_declare_names_what_is_missing(
    accounts: Accounts, base_env: dict[str, str]
) -> None:
    broker = Broker(Config.from_env(env_of(base_env, accounts, "worker")), name="test")
    with pytest.raises(TopologyMissing) as missing:
        await broker.connect()
    message = str(missing.value)
    assert "exchange 'gleaner.jobs'" in message and "queue 'gleaner.q.slow'" in message
    assert "gleaner migrate --topology" in message
    assert broker.connection is None


async def test_no_service_user_may_declare_the_topology(accounts: Accounts, base_env: dict[str, str]) -> None:
    topology = Topology.from_config(Config.from_env(base_env))
    for service in SERVICES:
        connection = await aio_pika.connect(accounts.amqp_url(service))
        try:
            with pytest.raises(ChannelAccessRefused):
                await declare(await connection.channel(), topology)
        finally:
            await connection.close()


async def test_the_migrate_user_declares_and_the_service_users_run_jobs_but_cannot_delete_queues(
    accounts: Accounts, base_env: dict[str, str], tmp_path: Path, api_factory: type[Api]
) -> None:
    migrate = Stack(env_of(base_env, accounts, "migrate"), tmp_path)
    assert "declared" in await migrate.run_cli("migrate", "--topology")
    # what services check passively is everything the migration declared
    exchanges, queues = declared_names(Topology.from_config(Config.from_env(base_env)))
    assert await declared_objects(accounts.vhost) == (set(exchanges), set(queues))
    stack = Stack(base_env, tmp_path)
    try:
        for service in ("worker", "scheduler"):
            await stack.start(service, GLEANER_AMQP_URL=accounts.amqp_url(service))
        gateway = await stack.start("gateway", GLEANER_AMQP_URL=accounts.amqp_url("gateway"))
        await _jobs_run(api_factory(gateway.url))
    finally:
        stack.stop_all()
    for service in SERVICES:
        await _deleting_is_refused(accounts, service)


async def _jobs_run(api: Api) -> None:
    # published by the gateway, consumed by the worker, awaited through the gateway's own event queue
    assert (await api.job((await api.submit(kind="noop"))["id"], wait=10))["state"] == "succeeded"
    # retries travel through the delay levels the worker publishes to
    retried = await api.submit(kind="fail", payload={"times": 1}, retry_base_s=0.1, max_attempts=2)
    assert (await wait_state(api, retried["id"]))["state"] == "succeeded"
    # a cancel reaches the running handler through the worker's event queue
    running = await api.submit(kind="sleep", payload={"seconds": 30}, queue="slow")
    await wait_state(api, running["id"], ("running",))
    assert (await api.request("POST", f"/jobs/{running['id']}/cancel"))[0] in (200, 202)
    assert (await wait_state(api, running["id"]))["state"] == "cancelled"
    # the scheduler publishes what it fires
    status, schedule = await api.request(
        "POST", "/schedules", json={"name": "every-second", "interval_s": 1, "job": {"kind": "noop"}}
    )
    assert status == 201, schedule

    async def fired_and_ran() -> bool:
        status, jobs = await api.request("GET", "/jobs", params={"schedule_id": schedule["id"], "state": "succeeded"})
        return status == 200 and bool(jobs["jobs"])

    await eventually(fired_and_ran, timeout_s=20, what="a job the scheduler fired to succeed")
    status, queues = await api.request("GET", "/queues")  # a passive declare of each work queue
    assert status == 200 and {q["name"] for q in queues["queues"]} == {"default", "slow"}


async def _deleting_is_refused(accounts: Accounts, service: str) -> None:
    topology = Topology.from_config(Config.from_env({"GLEANER_NAMESPACE": NAMESPACE}))
    connection = await aio_pika.connect(accounts.amqp_url(service))
    try:
        with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
            await (await connection.channel()).queue_delete(topology.work_queue("default"))
        with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
            await (await connection.channel()).exchange_delete(topology.jobs_exchange)
        queue = await (await connection.channel()).declare_queue(topology.work_queue("default"), passive=True)
        assert queue.name == "gleaner.q.default"
    finally:
        await connection.close()
