"""POST /queues/{name}/pause and /resume: workers stop taking a queue's jobs and take them again."""

from __future__ import annotations

import asyncio

import aio_pika

from gleaner.shared.amqp import Topology
from gleaner.shared.config import Config
from tests.support.stack import Api, Stack, eventually


async def consumers_of(config: Config, queue: str) -> int:
    connection = await aio_pika.connect(config.amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(Topology.from_config(config).work_queue(queue), passive=True)
        return int(declared.declaration_result.consumer_count or 0)
    finally:
        await connection.close()


async def test_a_paused_queue_keeps_its_jobs_waiting_until_it_is_resumed(
    stack: Stack, api_factory: type[Api], config: Config
) -> None:
    api = api_factory((await stack.start("gateway")).url)
    await stack.start("worker", name="running-before")

    status, paused = await api.request("POST", "/queues/default/pause", json={"reason": "site is down"})
    assert status == 200 and (paused["paused"], paused["pause_reason"]) == (True, "site is down")

    async def no_consumer() -> bool:
        return await consumers_of(config, "default") == 0

    await eventually(no_consumer, timeout_s=5, what="no consumer on default")
    await stack.start("worker", name="started-while-paused")
    job = await api.submit(kind="noop")
    await asyncio.sleep(1.5)  # absence: nothing may take the job while the queue is paused
    _, waiting = await api.request("GET", f"/jobs/{job['id']}")
    _, queues = await api.request("GET", "/queues")
    assert waiting["state"] == "queued" and await consumers_of(config, "default") == 0
    assert [q["paused"] for q in queues["queues"] if q["name"] == "default"] == [True]

    status, resumed = await api.request("POST", "/queues/default/resume")
    assert status == 200 and resumed["paused"] is False and resumed["paused_at"] is None
    _, done = await api.request("GET", f"/jobs/{job['id']}", params={"wait": "10"})
    assert done["state"] == "succeeded"
    assert await consumers_of(config, "default") == 2


async def test_pausing_an_unknown_queue_is_404_and_a_bad_body_is_422(stack: Stack, api_factory: type[Api]) -> None:
    api = api_factory((await stack.start("gateway")).url)

    missing, _ = await api.request("POST", "/queues/nowhere/pause")
    bad, problem = await api.request("POST", "/queues/default/pause", json={"why": 1})

    assert missing == 404
    assert bad == 422 and problem["errors"][0]["field"] == "why"


async def test_queues_are_paused_and_listed_from_the_command_line(stack: Stack) -> None:
    gateway = await stack.start("gateway")
    env = {"GLEANER_API_URL": f"{gateway.url}/api/v1"}

    paused = await stack.run_cli("queues", "pause", "default", "--reason", "maintenance", env=env)
    listed = await stack.run_cli("queues", env=env)
    resumed = await stack.run_cli("queues", "resume", "default", env=env)

    assert paused.strip() == "queue default paused" and resumed.strip() == "queue default resumed"
    header, row = listed.splitlines()[:2]
    assert header.split()[:2] == ["NAME", "PAUSED"] and row.split()[:2] == ["default", "True"]
