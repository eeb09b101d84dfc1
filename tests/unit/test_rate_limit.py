"""The API's per-key token buckets (pure, explicit clocks)."""

from __future__ import annotations

from gleaner.services.gateway.rate_limit import KeyBuckets, buckets_for, retry_after_s


def test_a_key_gets_its_burst_at_once_then_the_rate() -> None:
    buckets = KeyBuckets(rate_per_s=2.0, burst=3.0)

    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == 0.5  # the next token is half a second away at 2/s
    assert buckets.take("a", 0.5) == 0.0
    assert buckets.take("a", 0.5) > 0


def test_keys_do_not_share_a_bucket() -> None:
    buckets = KeyBuckets(rate_per_s=1.0, burst=1.0)

    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("b", 0.0) == 0.0
    assert buckets.take("a", 0.0) > 0


def test_an_idle_key_refills_only_up_to_its_burst() -> None:
    buckets = KeyBuckets(rate_per_s=10.0, burst=2.0)
    buckets.take("a", 0.0)

    allowed = sum(buckets.take("a", 3600.0) == 0.0 for _ in range(5))

    assert allowed == 2


def test_the_limit_is_off_at_rate_0_and_the_default_burst_is_twice_the_rate() -> None:
    assert buckets_for(0.0, 5) is None
    default = buckets_for(2.5, 0)
    assert default is not None and default.burst == 5.0
    tiny = buckets_for(0.1, 0)
    assert tiny is not None and tiny.burst == 1.0
    given = buckets_for(10, 3)
    assert given is not None and given.burst == 3.0


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert [retry_after_s(w) for w in (0.01, 1.0, 1.2)] == [1, 1, 2]
