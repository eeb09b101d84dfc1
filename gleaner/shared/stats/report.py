"""The report (seed 003's generate-report): per site and kind the outcomes, success rate, p50/p95 durations, top
error classes and dead letters over the last hours. `gleaner report` reads it from GET /reports; the
`maintenance.report` kind stores the same as its result, so a schedule keeps one every few hours.

Outcomes and durations are GET /stats' (the job_minutes/job_hours rollups past 10,000 finished jobs); error classes
come from the failed attempts of the window (a partial index holds only those), dead letters are the failed jobs of
each group plus the poison messages recorded in the window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from gleaner.shared.rows import Row, timestamp
from gleaner.shared.stats.rules import StatsQuery, merge_groups
from gleaner.shared.stats.store import Queries, stats_on

DEFAULT_HOURS = 24.0
MAX_HOURS = 366 * 24.0
TOP_CLASSES = 5
# Failed attempts of the window by the site and kind of their job, which the attempt row carries: an index-only scan
# of job_attempts_errors (it holds only failed attempts). A row an older worker wrote during an upgrade carries no
# kind: it counts in the report's overall error classes, not in a group's.
ERROR_CLASSES = """
SELECT site, COALESCE(kind, '') AS kind, error_class, count(*) AS attempts
FROM job_attempts
WHERE error_class IS NOT NULL AND finished_at >= $1
GROUP BY 1, 2, 3
"""
# poison messages recorded in the window and not resolved, by reason
MESSAGES = """
SELECT reason, count(*) AS messages FROM dead_letters
WHERE created_at >= $1 AND resolved_at IS NULL GROUP BY reason ORDER BY reason
"""


async def build_report(conn: Queries, hours: float) -> dict[str, Any]:
    rows = await stats_on(conn, StatsQuery(window_s=hours * 3600.0, since=None, site=None, kind=None))
    errors = await conn.fetch(ERROR_CLASSES, rows.since)
    messages = await conn.fetch(MESSAGES, rows.since)
    report = shape(merge_groups(rows.jobs, rows.pages), errors, messages)
    return {"since": timestamp(rows.since), "until": timestamp(rows.until), "hours": hours} | report


def shape(groups: list[dict[str, Any]], errors: Sequence[Row], messages: Sequence[Row]) -> dict[str, Any]:
    """Each group with its top error classes and dead letters (its failed jobs); the same over every group."""
    by_group: dict[tuple[str | None, str], Counter[str]] = {}
    overall: Counter[str] = Counter()
    for row in errors:
        by_group.setdefault((row["site"], row["kind"]), Counter())[row["error_class"]] += int(row["attempts"])
        overall[row["error_class"]] += int(row["attempts"])
    shown = [
        _report_group(group, by_group.get((group["site"], group["kind"]), Counter()))
        for group in groups
        if group["jobs"] or (group["site"], group["kind"]) in by_group
    ]
    poison = {row["reason"]: int(row["messages"]) for row in messages}
    return {
        "groups": shown,
        "error_classes": _top(overall, 2 * TOP_CLASSES),
        "dead_letters": {"failed_jobs": sum(g["dead_letters"] for g in shown), "messages": poison},
    }


def _report_group(group: dict[str, Any], classes: Counter[str]) -> dict[str, Any]:
    keep = ("site", "kind", "jobs", "states", "success_rate", "duration_s")
    return {key: group[key] for key in keep} | {
        "error_classes": _top(classes, TOP_CLASSES),
        "dead_letters": group["states"]["failed"],
    }


def _top(counts: Counter[str], n: int) -> list[dict[str, Any]]:
    """The most frequent first, ties by name."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
    return [{"error_class": name, "attempts": count} for name, count in ranked]
