"""GLEANER_GATEWAY_PROCESSES: one port served by several gateway processes that share their metrics, drain together
on SIGTERM and never stay half up."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from tests.ops.tools import tool
from tests.support.contract import checked_session
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Service, Stack, eventually

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CONNECTIONS = 16  # the kernel spreads connections over the processes: all 16 on one of two is a 1-in-32,768 chance
ESTABLISHED = "01"


@pytest.fixture
async def gateway(stack: Stack) -> Service:
    return await stack.start("gateway", GLEANER_GATEWAY_PROCESSES="2")


@pytest.fixture
async def clients() -> AsyncIterator[list[aiohttp.ClientSession]]:
    """CONNECTIONS sessions of one keep-alive connection each."""
    async with AsyncExitStack() as sessions:
        yield [
            await sessions.enter_async_context(checked_session(headers=AUTH, connector=aiohttp.TCPConnector(limit=1)))
            for _ in range(CONNECTIONS)
        ]


def processes_of(service: Service) -> list[int]:
    assert service.process is not None
    pid = service.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    assert found
    return int(found.group(1)) * 1024


def held_connections(pid: int, port: int) -> list[int]:
    """The receive queues of the client connections process `pid` holds on `port` (0: it read all that came)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with_socket = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd)) if fd.exists() else None
        if with_socket:
            inodes.add(with_socket.group(1))
    queues = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == ESTABLISHED and fields[9] in inodes:
            queues.append(int(fields[4].split(":")[1], 16))
    return queues


async def metric(base_url: str, line: str) -> float:
    """A sample of /metrics asked on a fresh connection (so any process may answer)."""
    async with checked_session() as session, session.get(f"{base_url}/metrics") as response:
        text = await response.text()
    found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.MULTILINE)
    assert found, f"{line} not in /metrics:\n{text}"
    return float(found.group(1))


async def test_two_gateway_processes_both_serve_the_port_and_metrics_add_up_over_both(
    gateway: Service, clients: list[aiohttp.ClientSession]
) -> None:
    workers = processes_of(gateway)
    assert len(workers) == 2

    for session in clients:
        async with session.post(f"{gateway.url}/api/v1/jobs", json={"kind": "noop"}) as response:
            assert response.status == 202

    assert all(held_connections(pid, gateway.port) for pid in workers)  # each process holds some of the 16
    submitted = 'gleaner_http_requests_total{code="202",method="POST",route="/api/v1/jobs"}'
    for _ in range(6):  # whichever process answers, the sums over both
        assert await metric(gateway.url, submitted) == CONNECTIONS
        assert await metric(gateway.url, 'gleaner_jobs_submitted_total{kind="noop",queue="default"}') == CONNECTIONS
    assert await metric(gateway.url, 'gleaner_db_pool_connections{state="max"}') == 2 * 16
    largest_rss = max(rss_bytes(pid) for pid in workers)  # the total of two is well past either one
    assert await metric(gateway.url, "process_resident_memory_bytes") > 1.5 * largest_rss
    async with checked_session() as session, session.get(f"{gateway.url}/metrics") as response:
        body = await response.read()
    promtool = await asyncio.to_thread(
        subprocess.run, [tool("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert promtool.returncode == 0, promtool.stdout.decode() + promtool.stderr.decode()


async def test_a_console_sign_in_holds_at_every_gateway_process(
    gateway: Service, clients: list[aiohttp.ClientSession]
) -> None:
    form = {"key": ADMIN_TOKEN, "next": "/console/"}
    async with clients[0].post(f"{gateway.url}/console/sign-in", data=form, allow_redirects=False) as response:
        assert response.status == 303
        cookie = {"Cookie": f"gleaner_console={response.cookies['gleaner_console'].coded_value}"}

    for session in clients:
        async with session.get(f"{gateway.url}/console/", headers=cookie, allow_redirects=False) as response:
            assert response.status == 200
    assert all(held_connections(pid, gateway.port) for pid in processes_of(gateway))


async def test_sigterm_drains_every_gateway_process_and_exits_0(
    gateway: Service, clients: list[aiohttp.ClientSession]
) -> None:
    async with clients[0].post(f"{gateway.url}/api/v1/jobs", json={"kind": "noop"}) as response:
        job = await response.json()  # no worker runs: each wait below holds its request for its full time
    workers = processes_of(gateway)

    async def wait(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{gateway.url}/api/v1/jobs/{job['id']}", params={"wait": "2"}) as response:
            await response.read()
            return response.status

    waits = [asyncio.create_task(wait(session)) for session in clients]

    async def all_read() -> bool:  # every request in a handler: both processes hold connections, all bytes read
        held = [held_connections(pid, gateway.port) for pid in workers]
        return all(held) and sum(len(q) for q in held) == CONNECTIONS and not any(map(any, held))

    await eventually(all_read, what="both processes holding their waits")
    gateway.signal(signal.SIGTERM)

    assert await asyncio.gather(*waits) == [200] * CONNECTIONS
    assert gateway.process is not None
    assert await asyncio.to_thread(gateway.process.wait, 15) == 0
    assert not any(map(alive, workers))


async def test_a_gateway_process_that_dies_stops_the_others_and_the_gateway_exits_non_zero(gateway: Service) -> None:
    killed, other = processes_of(gateway)

    os.kill(killed, signal.SIGKILL)

    assert gateway.process is not None
    try:
        code = await asyncio.to_thread(gateway.process.wait, 15)
    except subprocess.TimeoutExpired:
        pytest.fail("the gateway stayed up with one of its two processes")
    assert code == 128 + signal.SIGKILL
    assert not alive(other)
    assert f"gateway process {killed} was killed by signal 9: stopping the others" in gateway.log()
