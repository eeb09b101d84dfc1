"""The operator's API client against a local stand-in gateway: submissions are resent safely."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gleaner.services.operator import client
from gleaner.services.operator.client import ApiError, GatewayClient
from tests.support.stack import free_port


class StandIn:
    """Answers POST /api/v1/jobs with the statuses given, in turn, and notes each request's Idempotency-Key."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.keys: list[str | None] = []

    async def submit(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        status = self.statuses.pop(0)
        body = {"id": 1, "state": "queued"} if status == 202 else {"title": "Service Unavailable"}
        return web.json_response(body, status=status)


@pytest.fixture(autouse=True)
def quick_resends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "RESEND_PAUSES_S", (0.01,) * 5)


@contextlib.asynccontextmanager
async def serve(stand_in: StandIn) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/api/v1/jobs", stand_in.submit)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/api/v1"
    await runner.cleanup()


async def submit_to(stand_in: StandIn) -> object:
    async with serve(stand_in) as url, GatewayClient(url, "token") as api:
        return await api.submit("/jobs", {"kind": "noop"})


async def test_a_503_is_answered_by_sending_the_same_submission_again_under_the_same_key() -> None:
    stand_in = StandIn(503, 502, 202)
    assert await submit_to(stand_in) == {"id": 1, "state": "queued"}
    assert len(stand_in.keys) == 3 and len(set(stand_in.keys)) == 1
    assert stand_in.keys[0] is not None and stand_in.keys[0].startswith("gleaner-cli-")


async def test_a_refused_submission_is_not_sent_again() -> None:
    stand_in = StandIn(422)
    with pytest.raises(ApiError):
        await submit_to(stand_in)
    assert len(stand_in.keys) == 1


async def test_resending_stops_after_its_last_try_with_the_gateway_s_error() -> None:
    stand_in = StandIn(*[503] * 6)
    with pytest.raises(ApiError, match="503"):
        await submit_to(stand_in)
    assert len(stand_in.keys) == 6


async def test_each_submission_gets_its_own_key() -> None:
    first, second = StandIn(202), StandIn(202)
    await submit_to(first)
    await submit_to(second)
    assert first.keys != second.keys
