"""`gleaner jobs submit` against a local stand-in gateway: through gleaner.Client, submissions are resent safely."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gleaner import RetryPolicy
from gleaner.services import cli
from gleaner.services.operator import commands
from tests.support.stack import free_port


class StandIn:
    """Answers POST /api/v1/jobs with the statuses given, in turn, and notes each request's Idempotency-Key."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.keys: list[str | None] = []

    async def submit(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        status = self.statuses.pop(0)
        if status == 202:
            return web.json_response({"id": 1, "kind": "noop", "state": "queued"}, status=status)
        return web.json_response({"title": "Service Unavailable"}, status=status)


@pytest.fixture(autouse=True)
def quick_resends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "RESENDS", RetryPolicy(attempts=6, base_s=0.01, cap_s=0.01))


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


async def submit_to(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """`gleaner jobs submit noop` (in a thread: the stand-in answers on this loop); its exit code and output."""
    async with serve(stand_in) as url:
        monkeypatch.setenv("GLEANER_API_URL", url)
        monkeypatch.setenv("GLEANER_API_TOKEN", "token")
        code = await asyncio.to_thread(cli.main, ["jobs", "submit", "noop"])
    out, err = capsys.readouterr()
    return f"{code} {out}{err}".strip()


async def test_a_503_is_answered_by_sending_the_same_submission_again_under_the_same_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in = StandIn(503, 502, 202)
    assert await submit_to(stand_in, monkeypatch, capsys) == "0 job 1 queued"
    assert len(stand_in.keys) == 3 and len(set(stand_in.keys)) == 1 and stand_in.keys[0]


async def test_a_refused_submission_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in = StandIn(422)
    assert (await submit_to(stand_in, monkeypatch, capsys)).startswith("1 gleaner: HTTP 422")
    assert len(stand_in.keys) == 1


async def test_resending_stops_after_its_last_try_with_the_gateway_s_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in = StandIn(*[503] * 6)
    assert (await submit_to(stand_in, monkeypatch, capsys)).startswith("1 gleaner: HTTP 503 Service Unavailable")
    assert len(stand_in.keys) == 6


async def test_each_submission_gets_its_own_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = StandIn(202), StandIn(202)
    await submit_to(first, monkeypatch, capsys)
    await submit_to(second, monkeypatch, capsys)
    assert first.keys != second.keys
