"""GET /stats without a database: the window parameters and how grouped rows become the response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gleaner.shared.errors import ValidationProblem
from gleaner.shared.stats.rules import (
    NO_DURATION,
    STATES,
    StatsQuery,
    bucket_percentile,
    merge_groups,
    parse_stats_query,
    rollup_groups,
    success_rate,
)


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


def test_percentiles_from_duration_buckets_are_the_middle_of_the_bucket_holding_the_rank() -> None:
    # bucket b holds durations in [2^(b/8), 2^((b+1)/8)): 0 is [1 s, 1.09 s), 8 is [2 s, 2.18 s)
    assert bucket_percentile({0: 9, 8: 1}, 0.5) == pytest.approx(2 ** (0.5 / 8))
    # rank 0.95 * 9 = 8.55: 55% of the way from the ninth smallest (bucket 0) to the tenth (bucket 8)
    low, high = 2 ** (0.5 / 8), 2 ** (8.5 / 8)
    assert bucket_percentile({0: 9, 8: 1}, 0.95) == pytest.approx(low + 0.55 * (high - low))
    assert bucket_percentile({8: 1, 0: 1}, 0.0) == pytest.approx(2 ** (0.5 / 8))
    assert bucket_percentile({}, 0.5) is None


def test_rollup_rows_become_one_group_per_site_and_kind_with_state_counts_and_bucket_percentiles() -> None:
    rows = [
        {"site": "shop", "kind": "scrape", "state": "succeeded", "bucket": 0, "jobs": 3, "deferrals": 1},
        {"site": "shop", "kind": "scrape", "state": "failed", "bucket": 8, "jobs": 1, "deferrals": 0},
        {"site": "shop", "kind": "scrape", "state": "queued", "bucket": NO_DURATION, "jobs": 2, "deferrals": 2},
        {"site": None, "kind": "noop", "state": "cancelled", "bucket": NO_DURATION, "jobs": 5, "deferrals": 0},
    ]
    shop, noop = merge_groups(rollup_groups(rows), [])[1], merge_groups(rollup_groups(rows), [])[0]
    assert {s: n for s, n in shop["states"].items() if n} == {"succeeded": 3, "failed": 1, "queued": 2}
    assert (shop["jobs"], shop["success_rate"], shop["deferrals"]) == (6, 0.75, 3)
    # durations: three in bucket 0, one in bucket 8: p50 at rank 1.5 (bucket 0), p95 at rank 2.85
    low, high = 2 ** (0.5 / 8), 2 ** (8.5 / 8)
    assert shop["duration_s"] == {"p50": pytest.approx(low), "p95": pytest.approx(low + 0.85 * (high - low))}
    assert (noop["jobs"], noop["duration_s"]) == (5, {"p50": None, "p95": None})
