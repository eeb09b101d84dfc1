"""Pure parts of GET /stats: the query parameters, and grouped rows turned into the response's groups."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.field_checks import Invalid, parse_timestamp, query_number
from gleaner.shared.rows import Row

DEFAULT_WINDOW_S = 3600.0
MAX_WINDOW_S = 366 * 86_400.0
# the order states are listed in; unfinished ones are counted as they are now
STATES = ("scheduled", "queued", "running", "retrying", "succeeded", "partial", "failed", "cancelled")
# the outcomes success_rate is taken over (a cancellation is the user's choice, not a failure)
JUDGED = ("succeeded", "partial", "failed")

Key = tuple[str | None, str]


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """The window starts at `since`, or `window_s` before now (by the database clock); optional filters."""

    window_s: float | None
    since: datetime | None
    site: str | None
    kind: str | None


def parse_stats_query(query: Mapping[str, str]) -> StatsQuery:
    """`window_s` (default 3600) or `since` (RFC 3339), not both; `site` and `kind` filter."""
    errors: list[dict[str, str]] = []
    raw_window, raw_since = query.get("window_s"), query.get("since")
    window_s = DEFAULT_WINDOW_S if raw_since is None else None
    since = None
    if raw_window is not None:
        window_s = _window(raw_window, errors)
    if raw_since is not None:
        since = _since(raw_since, errors)
        if raw_window is not None:
            errors.append(field_error("since", "give either window_s or since, not both"))
    if errors:
        raise ValidationProblem(errors)
    return StatsQuery(window_s, since, query.get("site") or None, query.get("kind") or None)


def _window(raw: str, errors: list[dict[str, str]]) -> float | None:
    try:
        return query_number(0, MAX_WINDOW_S, exclusive_low=True)(raw)
    except Invalid:
        errors.append(field_error("window_s", f"must be a number of seconds above 0 and at most {MAX_WINDOW_S:g}"))
        return None


def _since(raw: str, errors: list[dict[str, str]]) -> datetime | None:
    try:
        return parse_timestamp(raw)
    except Invalid as exc:
        errors.append(field_error("since", str(exc)))
        return None


# job_minutes keeps durations as buckets floor(8 * log2(seconds)); the bucket of "no duration"
BUCKETS_PER_DOUBLING = 8
NO_DURATION = -32768
ROLLED_UP_STATES = ("succeeded", "partial", "failed")


def bucket_percentile(counts: Mapping[int, int], p: float) -> float | None:
    """The p-th percentile (0..1) of durations given as bucket → count, as percentile_cont takes it (linear
    between the two ranked values around p) with each duration at the geometric middle of its bucket: within
    2^(1/16) (4.5%) of the exact figure; None for no duration."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = p * (total - 1)
    low, high = _ranked(counts, math.floor(rank)), _ranked(counts, math.ceil(rank))
    return low + (rank - math.floor(rank)) * (high - low)


def _ranked(counts: Mapping[int, int], index: int) -> float:
    """The middle of the bucket holding the index-th smallest duration (from 0)."""
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen > index:
            return float(2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING))
    raise IndexError(index)


def rollup_groups(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """(site, kind, state, bucket, jobs, deferrals) rows from the rollup query, as the exact query's rows:
    one per (site, kind) with a count per state, p50_s/p95_s from the duration buckets, deferrals."""
    groups: dict[Key, dict[str, Any]] = {}
    durations: dict[Key, dict[int, int]] = {}
    for row in rows:
        key = (row["site"], row["kind"])
        group = groups.setdefault(key, {"site": key[0], "kind": key[1], "deferrals": 0, **dict.fromkeys(STATES, 0)})
        group[row["state"]] += int(row["jobs"])
        group["deferrals"] += int(row["deferrals"] or 0)
        if row["state"] in ROLLED_UP_STATES and row["bucket"] != NO_DURATION and row["jobs"]:
            buckets = durations.setdefault(key, {})
            buckets[row["bucket"]] = buckets.get(row["bucket"], 0) + int(row["jobs"])
    for key, group in groups.items():
        group["p50_s"] = bucket_percentile(durations.get(key, {}), 0.5)
        group["p95_s"] = bucket_percentile(durations.get(key, {}), 0.95)
    return list(groups.values())


def success_rate(states: Mapping[str, int]) -> float | None:
    """Succeeded over succeeded + partial + failed; None when nothing was judged."""
    judged = sum(states[s] for s in JUDGED)
    return states["succeeded"] / judged if judged else None


def job_group(row: Row) -> dict[str, Any]:
    """A (site, kind) row of the job aggregate: one count column per state, percentiles, deferrals."""
    states = {s: int(row[s]) for s in STATES}
    return {
        "site": row["site"],
        "kind": row["kind"],
        "jobs": sum(states.values()),
        "states": states,
        "success_rate": success_rate(states),
        "duration_s": {"p50": row["p50_s"], "p95": row["p95_s"]},
        "pages_fetched": 0,
        "pages_unchanged": 0,
        "deferrals": int(row["deferrals"] or 0),
    }


def empty_group(site: str | None, kind: str) -> dict[str, Any]:
    """A group with pages fetched in the window but no job in it (the job finished before the window)."""
    counts = dict.fromkeys(STATES, 0)
    return job_group({"site": site, "kind": kind, "p50_s": None, "p95_s": None, "deferrals": 0, **counts})


def merge_groups(job_rows: Iterable[Row], page_rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Job counts and page counts joined on (site, kind), ordered by site (no site first) then kind."""
    groups: dict[Key, dict[str, Any]] = {}
    for row in job_rows:
        groups[(row["site"], row["kind"])] = job_group(row)
    for row in page_rows:
        key = (row["site"], row["kind"])
        group = groups.setdefault(key, empty_group(*key))
        group["pages_fetched"] = int(row["pages"])
        group["pages_unchanged"] = int(row["unchanged"])
    return [groups[key] for key in sorted(groups, key=lambda k: (k[0] is not None, k[0] or "", k[1]))]


def site_counters(row: Row) -> dict[str, Any]:
    """A site's counters since it was created, and the same counted within the window."""
    return {
        "name": row["name"],
        "requests_total": row["requests_total"],
        "rate_limit_waits": row["rate_limit_waits"],
        "deferrals": row["deferrals"],
        "in_window": {
            "requests": row["window_requests"],
            "rate_limit_waits": row["window_rate_limit_waits"],
            "deferrals": row["window_deferrals"],
        },
    }
