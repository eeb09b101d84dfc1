"""Rows to JSON: schedules and the scheduler's status as the API shows them (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gleaner.services.gateway.job_views import Row, timestamp

# the definition (timing, job template, policies), then the firing state and counters
POLICIES = ("misfire", "overlap", "misfire_grace_s", "enabled")
TIMES = ("next_fire_at", "next_slot_at", "last_fire_at", "last_slot_at", "created_at", "updated_at")


def schedule_view(row: Row) -> dict[str, Any]:
    kind = row["kind"]
    view: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "type": kind,
        "interval_s": row["interval_s"] if kind == "interval" else None,
        "jitter": row["jitter"] if kind == "interval" else None,
        "cron": row["cron"] if kind == "cron" else None,
        "timezone": row["timezone"] if kind == "cron" else None,
        "at": timestamp(row["at"]),
        "job": row["job"],
        **{name: row[name] for name in POLICIES},
        "paused": row["paused"],
        "source": row["source"],
        "last_job": _last_job(row),
        "counters": {
            "fired": row["fired_count"],
            "skipped_overlap": row["skipped_overlap_count"],
            "skipped_misfire": row["misfire_skipped_count"],
        },
    }
    return view | {name: timestamp(row[name]) for name in TIMES}


def _last_job(row: Row) -> dict[str, Any] | None:
    if row["last_job_id"] is None:
        return None
    # the job may have been pruned since: its id stays, its state is then unknown (null)
    return {"id": row["last_job_id"], "state": row["last_job_state"]}


def scheduler_view(row: Row) -> dict[str, Any]:
    return {
        "leader": row["leader"] if row["leader_alive"] else None,
        "leader_since": timestamp(row["leader_since"]) if row["leader_alive"] else None,
        "last_leader": row["leader"],
        "paused": row["paused"],
        "last_tick_at": timestamp(row["last_tick_at"]),
        "due_backlog": row["due_backlog"],
        "last_fire_lag_s": row["last_fire_lag_s"],
        "next_fire_at": timestamp(row["next_fire_at"]),
        "schedules": row["schedules"],
        "active_schedules": row["active_schedules"],
    }


def preview_view(row: Row, slots: list[datetime]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "fire_times": [timestamp(slot) for slot in slots]}
