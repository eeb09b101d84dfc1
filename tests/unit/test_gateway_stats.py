"""GET /stats without a database: the window parameters and how grouped rows become the response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gleaner.services.gateway.stats_rules import STATES, StatsQuery, merge_groups, parse_stats_query, success_rate
from gleaner.shared.errors import ValidationProblem


def job_row(site: str | None, kind: str, **counts: int) -> dict[str, Any]:
    return {
        "site": site,
        "kind": kind,
        "p50_s": 0.5,
        "p95_s": 2.0,
        "deferrals": 3,
        **dict.fromkeys(STATES, 0),
        **counts,
    }


def bad_fields(query: dict[str, str]) -> set[str]:
    with pytest.raises(ValidationProblem) as caught:
        parse_stats_query(query)
    return {e["field"] for e in caught.value.errors}


def test_the_window_is_an_hour_unless_told_otherwise() -> None:
    assert parse_stats_query({}) == StatsQuery(3600.0, None, None, None)
    assert parse_stats_query({"window_s": "60", "site": "shop", "kind": "http.fetch"}) == StatsQuery(
        60.0, None, "shop", "http.fetch"
    )


def test_since_replaces_the_window() -> None:
    since = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_stats_query({"since": "2030-01-01T00:00:00Z"}) == StatsQuery(None, since, None, None)


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"window_s": "0"}, {"window_s"}),
        ({"window_s": "nan"}, {"window_s"}),
        ({"window_s": "an hour"}, {"window_s"}),
        ({"window_s": "1e12"}, {"window_s"}),
        ({"since": "yesterday"}, {"since"}),
        ({"since": "2030-01-01T00:00:00"}, {"since"}),
        ({"since": "2030-01-01T00:00:00Z", "window_s": "60"}, {"since"}),
        ({"since": ""}, {"since"}),
        ({"window_s": ""}, {"window_s"}),
    ],
)
def test_bad_window_parameters_are_422_naming_them(query: dict[str, str], fields: set[str]) -> None:
    assert bad_fields(query) == fields


def test_the_success_rate_leaves_out_cancellations_and_is_none_without_outcomes() -> None:
    counts = dict.fromkeys(STATES, 0)
    assert success_rate(counts) is None
    assert success_rate({**counts, "succeeded": 6, "partial": 1, "failed": 1, "cancelled": 5}) == 0.75


def test_groups_join_jobs_and_pages_by_site_and_kind() -> None:
    jobs = [job_row("shop", "scrape.pages", succeeded=3, failed=1), job_row(None, "noop", queued=2)]
    pages = [
        {"site": "shop", "kind": "scrape.pages", "pages": 30, "unchanged": 4},
        {"site": "board", "kind": "jobboard.scrape", "pages": 2, "unchanged": 0},
    ]
    groups = merge_groups(jobs, pages)
    assert [(g["site"], g["kind"]) for g in groups] == [
        (None, "noop"),
        ("board", "jobboard.scrape"),
        ("shop", "scrape.pages"),
    ]
    noop, board, shop = groups
    assert (noop["jobs"], noop["states"]["queued"], noop["success_rate"], noop["pages_fetched"]) == (2, 2, None, 0)
    assert (shop["jobs"], shop["success_rate"], shop["pages_fetched"], shop["pages_unchanged"]) == (4, 0.75, 30, 4)
    assert shop["duration_s"] == {"p50": 0.5, "p95": 2.0} and shop["deferrals"] == 3
    assert list(shop["states"]) == list(STATES)
    # pages fetched in the window by a job that finished before it
    assert (board["jobs"], board["pages_fetched"], board["duration_s"]["p50"]) == (0, 2, None)
