"""Pure parts of GET /stats: the query parameters, and grouped rows turned into the response's groups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.field_checks import Invalid, parse_timestamp, query_number

if TYPE_CHECKING:
    from gleaner.services.gateway.job_views import Row

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
