"""GET /queues' broker counts: kept for a TTL, refreshed in the background, waited for only when missing or old."""

from __future__ import annotations

import asyncio

import pytest

from gleaner.services.gateway.queue_depths import Counts, Freshness, QueueDepths


@pytest.mark.parametrize(
    ("age_s", "serve", "refresh"),
    [
        (None, False, True),
        (0.0, True, False),
        (4.9, True, False),
        (5.0, True, True),
        (14.9, True, True),
        (15.0, False, True),
    ],
)
def test_a_copy_is_served_within_three_ttls_and_refreshed_after_one(
    age_s: float | None, serve: bool, refresh: bool
) -> None:
    assert Freshness.of(age_s, ttl_s=5.0) == Freshness(serve=serve, refresh=refresh)


def test_a_zero_ttl_asks_the_broker_for_every_request() -> None:
    assert Freshness.of(0.0, ttl_s=0.0) == Freshness(serve=False, refresh=True)


class FakeBroker:
    """Answers with `ready` = how many times it was asked; `gate` holds the answer until set."""

    def __init__(self) -> None:
        self.asked = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def ask(self) -> Counts:
        self.asked += 1
        asked = self.asked
        await self.gate.wait()
        return {"default": {"ready": asked, "unacked": 0, "consumers": 1}}


async def test_requests_within_the_ttl_ask_the_broker_once() -> None:
    broker, now = FakeBroker(), [100.0]
    depths = QueueDepths(broker.ask, ttl_s=5.0, clock=lambda: now[0])
    first = await depths.get()
    now[0] += 4.0
    assert [await depths.get() for _ in range(3)] == [first] * 3
    assert broker.asked == 1


async def test_a_stale_copy_is_served_while_one_background_refresh_runs() -> None:
    broker, now = FakeBroker(), [100.0]
    depths = QueueDepths(broker.ask, ttl_s=5.0, clock=lambda: now[0])
    await depths.get()
    broker.gate.clear()
    now[0] += 6.0
    stale = await asyncio.gather(*(depths.get() for _ in range(5)))
    assert [c["default"]["ready"] for c in stale] == [1] * 5, "no request waits for the broker"
    broker.gate.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert (await depths.get())["default"]["ready"] == 2
    assert broker.asked == 2, "concurrent stale reads share one refresh"


async def test_a_copy_three_ttls_old_is_not_served_the_request_waits_for_the_broker() -> None:
    broker, now = FakeBroker(), [100.0]
    depths = QueueDepths(broker.ask, ttl_s=5.0, clock=lambda: now[0])
    await depths.get()
    now[0] += 15.0
    assert (await depths.get())["default"]["ready"] == 2


async def test_an_empty_answer_is_not_kept_the_next_request_asks_again() -> None:
    answers: list[Counts] = [{}, {"default": {"ready": 3, "unacked": None, "consumers": 0}}]

    async def ask() -> Counts:
        return answers.pop(0)

    depths = QueueDepths(ask, ttl_s=5.0)
    assert await depths.get() == {}
    assert (await depths.get())["default"]["ready"] == 3


async def test_a_failed_refresh_keeps_the_last_counts_and_is_retried() -> None:
    calls: list[int] = []

    async def ask() -> Counts:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("broker gone mid-answer")
        return {"default": {"ready": len(calls), "unacked": 0, "consumers": 1}}

    now = [0.0]
    depths = QueueDepths(ask, ttl_s=5.0, clock=lambda: now[0])
    await depths.get()
    now[0] = 16.0
    assert (await depths.get())["default"]["ready"] == 1, "the failure is logged, the last counts stay"
    assert (await depths.get())["default"]["ready"] == 3


async def test_the_counts_are_asked_for_every_ttl_without_any_request() -> None:
    broker = FakeBroker()
    depths = QueueDepths(broker.ask, ttl_s=0.05)
    following = asyncio.ensure_future(depths.follow())
    try:
        await asyncio.sleep(0.3)
    finally:
        following.cancel()
        await depths.close()
    assert broker.asked >= 3
    assert (await depths.get())["default"]["ready"] >= 3, "a request reads the background's last answer"


async def test_a_zero_ttl_has_no_background_asking() -> None:
    broker = FakeBroker()
    await asyncio.wait_for(QueueDepths(broker.ask, ttl_s=0.0).follow(), timeout=1)
    assert broker.asked == 0
