"""The polite client with its limiter and fetcher faked: when it waits, pauses, defers, and what it sends."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from gleaner.services.worker.context import Deferred
from gleaner.services.worker.fetch import Response, ServerBusy
from gleaner.services.worker.polite_http import PoliteClient, resolve_proxies
from gleaner.services.worker.politeness import INLINE_WAIT_S, MID_JOB_WAIT_S, BucketState, Reservation
from gleaner.services.worker.site_limits import Site
from gleaner.shared.errors import PermanentError
from gleaner.shared.metrics import Metrics

SITE = Site("shop", 3600, 1, 0, 1.0, 2.0, None, None, 0.3, 7.0, 5000, "PoliteBot/1", robots="ignore")


class FakeLimits:
    def __init__(self, waits: list[float]) -> None:
        self.waits = waits
        self.asked: list[float] = []

        self.backoffs: list[float | None] = []

    async def take(self, site: Site, max_wait_s: float, crawl_delay_s: float | None = None) -> Reservation:
        self.asked.append(max_wait_s)
        wait_s = self.waits.pop(0)
        return Reservation(wait_s <= max_wait_s, wait_s, BucketState())

    async def back_off(self, site: Site, retry_after_s: float | None) -> None:
        self.backoffs.append(retry_after_s)

    async def settle(self, site: Site, adaptive_delay_s: float | None) -> None:
        return None

    async def paused(self, site: Site) -> bool:
        return False


class FakeFetch:
    def __init__(self, fail: bool = False, busy: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.busy = busy
        self.user_agent = "Gleaner/0.1"

    async def get(self, url: str, **kwargs: Any) -> Response:
        self.calls.append({"url": url, **kwargs})
        if self.fail:
            raise PermanentError("gone", error_class="http_404")
        if self.busy:
            self.busy -= 1
            raise ServerBusy("busy", status=429, retry_after_s=3.0)
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


async def test_a_busy_answer_pauses_the_site_and_the_page_is_asked_again_after_it() -> None:
    fetch = FakeFetch(busy=1)
    polite, _, limits = client([0, 3.0], fetch)
    response = await polite.get("http://shop.test/1")
    assert response.status == 200 and len(fetch.calls) == 2
    assert limits.backoffs == [3.0]
    metrics = polite._metrics
    assert (
        metrics.registry.get_sample_value("gleaner_site_backoffs_total", {"site": "shop", "reason": "retry_after"}) == 1
    )


async def test_a_site_that_stays_busy_fails_the_page_after_three_tries() -> None:
    polite, _, limits = client([0, 0, 0], FakeFetch(busy=5))
    with pytest.raises(ServerBusy):
        await polite.get("http://shop.test/1")
    assert limits.backoffs == [3.0, 3.0, 3.0]


async def test_proxies_are_used_in_rotation() -> None:
    fetch = FakeFetch()
    limits = FakeLimits([0, 0, 0])
    polite = PoliteClient(
        fetch,
        limits,
        SITE,
        Metrics("t"),
        proxies=("http://a:1", "http://b:2"),
        sleep=_no_sleep,  # type: ignore[arg-type]
    )
    for n in range(3):
        await polite.get(f"http://shop.test/{n}")
    assert [c["proxy"] for c in fetch.calls] == ["http://a:1", "http://b:2", "http://a:1"]


async def _no_sleep(_: float) -> None:
    return None


def test_proxy_references_resolve_from_the_environment_or_a_file_and_a_missing_one_fails(tmp_path: Path) -> None:
    secret = tmp_path / "proxy"
    secret.write_text("http://user:pw@proxy.test:3128\n")
    env = {"EGRESS": "http://proxy.test:8080"}
    assert resolve_proxies(("env:EGRESS", f"file:{secret}"), env) == (
        "http://proxy.test:8080",
        "http://user:pw@proxy.test:3128",
    )
    with pytest.raises(PermanentError) as caught:
        resolve_proxies(("env:NOPE",), env)
    assert caught.value.error_class == "proxy_unset"
    with pytest.raises(PermanentError):
        resolve_proxies((f"file:{tmp_path / 'missing'}",), env)


async def test_an_adaptive_site_exports_its_effective_rate() -> None:
    site = Site("fast", 3600, 1, 0.5, 0.0, 0.0, None, None, 0.3, 7.0, 5000, None, robots="ignore", adaptive=True)
    polite = PoliteClient(FakeFetch(), FakeLimits([0]), site, Metrics("t"), sleep=_no_sleep)  # type: ignore[arg-type]
    await polite.get("http://fast.test/1")
    rate = polite._metrics.registry.get_sample_value("gleaner_site_effective_requests_per_hour", {"site": "fast"})
    # from the 1 s start halfway towards a near-zero latency: about 0.5 s apart, 7200 an hour, capped at 3600
    assert rate == 3600.0
