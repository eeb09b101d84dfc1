"""`gleaner jobs submit` whose answer is lost sends the submission again under the same Idempotency-Key: one job."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest

from tests.integration.tcp_proxy import TcpProxy
from tests.support.contract import checked_session
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Service, Stack


@pytest.fixture
async def gateway(stack: Stack) -> Service:
    return await stack.start("gateway")


@pytest.fixture
async def lossy(gateway: Service) -> AsyncIterator[TcpProxy]:
    """In front of the gateway: the first request reaches it, but its answer never reaches the client."""
    proxy = TcpProxy("127.0.0.1", gateway.port, drop_answers=1)
    await proxy.start()
    yield proxy
    await proxy.close()


async def posted(gateway: Service) -> float:
    """How many POST /api/v1/jobs the gateway answered."""
    async with checked_session() as session, session.get(f"{gateway.url}/metrics") as response:
        text = await response.text()
    pattern = r'^gleaner_http_requests_total\{[^}]*method="POST"[^}]*route="/api/v1/jobs"[^}]*\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))


async def test_a_submission_whose_answer_is_lost_is_sent_again_and_creates_one_job(
    stack: Stack, db: asyncpg.Pool, gateway: Service, lossy: TcpProxy
) -> None:
    env = {"GLEANER_API_URL": f"http://127.0.0.1:{lossy.port}/api/v1", "GLEANER_API_TOKEN": ADMIN_TOKEN}
    out = await stack.run_cli("jobs", "submit", "noop", "--payload", '{"n": 1}', "--json", env=env)
    assert lossy.dropped == 1  # the first submission was committed, its 202 lost on the way back
    job = orjson.loads(out)
    rows = await db.fetch("SELECT id, payload FROM jobs")
    assert [(r["id"], r["payload"]) for r in rows] == [(job["id"], {"n": 1})]
    assert await posted(gateway) == 2  # the resend was answered from the Idempotency-Key's record
