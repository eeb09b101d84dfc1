"""The polite client with its limiter and fetcher faked: when it waits, pauses, defers, and what it sends."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gleaner.services.worker.context import Deferred
from gleaner.services.worker.fetch import Response
from gleaner.services.worker.polite_http import PoliteClient
from gleaner.services.worker.politeness import INLINE_WAIT_S, MID_JOB_WAIT_S, BucketState, Reservation
from gleaner.services.worker.site_limits import Site
from gleaner.shared.errors import PermanentError
from gleaner.shared.metrics import Metrics

SITE = Site("shop", 3600, 1, 0, 1.0, 2.0, None, None, 0.3, 7.0, 5000, "PoliteBot/1")


class FakeLimits:
    def __init__(self, waits: list[float]) -> None:
        self.waits = waits
        self.asked: list[float] = []

    async def take(self, site: Site, max_wait_s: float) -> Reservation:
        self.asked.append(max_wait_s)
        wait_s = self.waits.pop(0)
        return Reservation(wait_s <= max_wait_s, wait_s, BucketState())


class FakeFetch:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    async def get(self, url: str, **kwargs: Any) -> Response:
        self.calls.append({"url": url, **kwargs})
        if self.fail:
            raise PermanentError("gone", error_class="http_404")
        return Response(url, 200, "text/html", b"x", url)


def client(waits: list[float], fetch: FakeFetch | None = None) -> tuple[PoliteClient, list[float], FakeLimits]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limits = FakeLimits(waits)
    polite = PoliteClient(fetch or FakeFetch(), limits, SITE, Metrics("t"), rng=random.Random(1), sleep=sleep)  # type: ignore[arg-type]
    return polite, slept, limits


async def test_the_first_request_waits_inline_for_a_near_turn_with_the_site_settings() -> None:
    fetch = FakeFetch()
    polite, slept, limits = client([0.8], fetch)
    await polite.get("http://shop.test/1", timeout_s=300)
    assert slept == [0.8] and limits.asked == [INLINE_WAIT_S]
    [call] = fetch.calls
    assert (call["timeout_s"], call["max_bytes"], call["headers"]["User-Agent"]) == (7.0, 5000, "PoliteBot/1")


async def test_the_first_request_defers_the_job_when_its_turn_is_far() -> None:
    fetch = FakeFetch()
    polite, slept, _ = client([42.0], fetch)
    with pytest.raises(Deferred) as caught:
        await polite.get("http://shop.test/1")
    assert caught.value.wait_s == 42.0 and fetch.calls == [] and slept == []


async def test_later_pages_pause_between_pages_and_wait_inline_longer() -> None:
    polite, slept, limits = client([0, 10.0])
    await polite.get("http://shop.test/1")
    await polite.get("http://shop.test/2")
    assert limits.asked == [INLINE_WAIT_S, MID_JOB_WAIT_S]
    pause, wait = slept
    assert 1.0 <= pause <= 2.0 and wait == 10.0


async def test_a_failed_request_is_counted_and_raised() -> None:
    polite, _, _ = client([0], FakeFetch(fail=True))
    with pytest.raises(PermanentError):
        await polite.get("http://shop.test/1")
    metrics = polite._metrics
    assert metrics.registry.get_sample_value("gleaner_site_failures_total", {"site": "shop"}) == 1
    assert (
        metrics.registry.get_sample_value("gleaner_site_requests_total", {"site": "shop", "outcome": "http_error"}) == 1
    )
