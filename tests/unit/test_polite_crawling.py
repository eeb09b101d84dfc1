"""Polite crawling's pure parts: Retry-After, backoff and adaptive spacing, robots.txt rules, text decoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gleaner.services.worker.fetch import decode_text, retry_after_s, user_agent
from gleaner.services.worker.politeness import (
    ADAPTIVE_MAX_S,
    BACKOFF_CAP_S,
    BucketState,
    Limits,
    adapted_delay_s,
    backoff_s,
    reserve,
)
from gleaner.services.worker.robots import UNREACHABLE, RobotsRules
from gleaner.shared.errors import ValidationProblem
from gleaner.shared.site_rules import effective_delay_s, effective_requests_per_hour, parse_site

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ROBOTS = """
User-agent: *
Disallow: /private
Allow: /private/open
Crawl-delay: 2

User-agent: otherbot
Disallow: /
"""


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), (" 120 ", 120.0), ("Sun, 30 Nov 2026 12:00:05 GMT", 5.0), ("Sun, 30 Nov 2026 11:00:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str, expected: float) -> None:
    assert retry_after_s(header, NOW) == expected


@pytest.mark.parametrize("header", [None, "", "soon", "-3", "1.5e9x"])
def test_an_absent_or_unreadable_retry_after_is_none(header: str | None) -> None:
    assert retry_after_s(header, NOW) is None


def test_without_retry_after_the_site_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_s(None, n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(None, 40) == BACKOFF_CAP_S
    assert backoff_s(3.0, 7) == 3.0


def test_a_pause_the_server_asked_for_holds_back_even_a_full_bucket() -> None:
    state = BucketState(paused_until=NOW + timedelta(seconds=3))
    limits = Limits(3600.0, 10, 0.0)
    assert reserve(state, limits, NOW, 1.0).taken is False
    taken = reserve(state, limits, NOW, 5.0)
    assert taken.taken and taken.wait_s == pytest.approx(3.0)


def test_adaptive_spacing_moves_halfway_to_the_latency_and_an_error_never_shortens_it() -> None:
    assert adapted_delay_s(None, 3.0, True, 0.0) == pytest.approx(2.0)  # from the 1 s start
    assert adapted_delay_s(4.0, 0.0, True, 0.0) == pytest.approx(2.0)
    assert adapted_delay_s(4.0, 0.0, False, 0.0) == pytest.approx(4.0)
    assert adapted_delay_s(4.0, 0.0, True, 3.0) == pytest.approx(3.0)  # never below the policy
    assert adapted_delay_s(ADAPTIVE_MAX_S, 1000.0, False, 0.0) == ADAPTIVE_MAX_S


def test_the_effective_spacing_is_the_largest_and_the_rate_never_exceeds_the_policy() -> None:
    assert effective_delay_s(1.0, 2.0, None) == 2.0
    assert effective_delay_s(5.0, 2.0, 3.0) == 5.0
    assert effective_requests_per_hour(100.0, 2.0) == 100.0
    assert effective_requests_per_hour(3600.0, 2.0) == 1800.0
    assert effective_requests_per_hour(3600.0, 0.0) == 3600.0


def test_robots_rules_follow_the_longest_match_and_the_crawl_delay_for_the_agent() -> None:
    rules = RobotsRules.of(200, ROBOTS)
    agent = "Gleaner/0.1 (+https://example.org/bot)"
    assert rules.allows("http://shop.test/page", agent)
    assert not rules.allows("http://shop.test/private/x", agent)
    assert rules.allows("http://shop.test/private/open/1", agent)  # the longer Allow wins (RFC 9309 2.2.2)
    assert rules.crawl_delay_s(agent) == 2.0
    assert not rules.allows("http://shop.test/page", "OtherBot/2")


def test_a_missing_robots_txt_allows_all_and_an_unreachable_one_disallows_all() -> None:
    assert RobotsRules.of(404, "").allows("http://shop.test/private", "Gleaner")
    for status in (UNREACHABLE, 500, 503, 429):
        assert not RobotsRules.of(status, "").allows("http://shop.test/", "Gleaner")


def test_text_is_decoded_by_the_declared_charset_else_detected() -> None:
    body = "Grüße aus Köln, schöne Straße".encode("latin-1")
    assert decode_text(body, "iso-8859-1") == "Grüße aus Köln, schöne Straße"
    assert decode_text("naïve café".encode(), None) == "naïve café"
    assert decode_text("naïve café".encode(), "no-such-charset") == "naïve café"


def test_the_default_user_agent_names_gleaner_and_the_operator_url() -> None:
    assert user_agent("https://example.org/bot") == "Gleaner/0.1 (+https://example.org/bot)"
    assert user_agent("") == "Gleaner/0.1"


def test_a_site_policy_takes_robots_adaptive_and_proxy_references() -> None:
    policy = parse_site("shop", {"robots": "ignore", "adaptive": True, "proxies": ["env:EGRESS", "file:/run/s/p"]})
    assert (policy.robots, policy.adaptive, policy.proxies) == ("ignore", True, ("env:EGRESS", "file:/run/s/p"))
    assert parse_site("shop", {}).robots == "obey"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"robots": "maybe"}, "robots"),
        ({"adaptive": "yes"}, "adaptive"),
        ({"proxies": ["http://user:secret@proxy:3128"]}, "proxies[0]"),
        ({"proxies": "env:EGRESS"}, "proxies"),
    ],
)
def test_a_proxy_url_in_clear_and_other_bad_polite_fields_are_refused(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationProblem) as caught:
        parse_site("shop", body)
    assert [e["field"] for e in caught.value.errors] == [field]
