"""Schedules through the API, without services: job templates, views, PATCH merges, scopes and the loop's pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gleaner.services.gateway.auth import ADMIN, READ, required_scope
from gleaner.services.gateway.schedule_views import schedule_view, scheduler_view
from gleaner.services.gateway.schedules_api import definition_body, merged
from gleaner.services.scheduler.firing_loop import FIRE_INTERVAL_S, MIN_PAUSE_S, next_pause
from gleaner.services.worker.handlers import load_registry
from gleaner.shared.config import Config
from gleaner.shared.errors import ValidationProblem
from gleaner.shared.kind_rules import KindRules
from gleaner.shared.scheduling.definitions import parse
from gleaner.shared.scheduling.firing import fan_out_payloads
from gleaner.shared.submission import parse_job, template_check

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHECK = template_check(Config(), load_registry(Config()).rules())


def fields_of(body: Any) -> set[str]:
    with pytest.raises(ValidationProblem) as caught:
        parse(body, CHECK, anchor=NOW)
    return {e["field"] for e in caught.value.errors}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "cron": "0 25 * * *", "job": {"kind": "noop"}}, "cron"),
        ({"name": "a", "cron": "0 2 * * *", "timezone": "Europe/Atlantis", "job": {"kind": "noop"}}, "timezone"),
        ({"name": "a", "interval_s": 0, "job": {"kind": "noop"}}, "interval_s"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "no.such.kind"}}, "job.kind"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "noop", "queue": "nowhere"}}, "job.queue"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "noop", "priority": 12}}, "job.priority"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "noop", "delay_s": 5}}, "job.delay_s"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "noop", "dedupe_key": "k"}}, "job.dedupe_key"),
        (
            {"name": "a", "interval_s": 5, "job": {"kind": "http.fetch", "payload": {"url": "http://10.0.0.1/"}}},
            "job.payload.url",
        ),
        ({"name": "a", "interval_s": 5, "job": "noop"}, "job"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "noop", "fan_out": ["a", "b"]}}, "job.fan_out"),
        (
            {"name": "a", "interval_s": 5, "job": {"kind": "noop", "fan_out": {"key": "", "values": [1]}}},
            "job.fan_out.key",
        ),
        (
            {"name": "a", "interval_s": 5, "job": {"kind": "noop", "fan_out": {"key": "t", "values": []}}},
            "job.fan_out.values",
        ),
    ],
)
def test_a_schedule_with_a_bad_timing_or_job_template_names_the_field(body: dict[str, Any], field: str) -> None:
    assert field in fields_of(body)


def test_a_job_template_keeps_only_the_fields_given_so_a_file_applied_twice_compares_equal() -> None:
    job = CHECK({"kind": "noop", "priority": 5, "timeout_s": 120, "site": None}, "job.")
    assert job == {"kind": "noop", "payload": {}, "priority": 5, "timeout_s": 120.0}
    assert CHECK(dict(job), "job.") == job


def test_a_fan_out_template_is_kept_with_its_values_and_fires_one_payload_per_value() -> None:
    job = CHECK(
        {"kind": "noop", "payload": {"source": "b3"}, "fan_out": {"key": "ticker", "values": ["PETR4", 7]}}, "job."
    )

    assert job == {"kind": "noop", "payload": {"source": "b3"}, "fan_out": {"key": "ticker", "values": ["PETR4", 7]}}
    assert CHECK(dict(job), "job.") == job
    assert fan_out_payloads(job) == [{"source": "b3", "ticker": "PETR4"}, {"source": "b3", "ticker": 7}]
    assert fan_out_payloads({"kind": "noop", "payload": {"a": 1}}) == [{"a": 1}]


def test_every_job_a_fan_out_creates_is_checked_like_a_submission() -> None:
    job = {
        "kind": "http.fetch",
        "payload": {"url": "https://example.com/"},
        "fan_out": {"key": "url", "values": ["https://example.com/a", "http://10.0.0.1/", "ftp://example.com/"]},
    }

    with pytest.raises(ValidationProblem) as caught:
        CHECK(job, "job.")

    fields = [e["field"] for e in caught.value.errors]
    assert fields == ["job.fan_out.values[1]", "job.fan_out.values[2]"]
    assert all("job.payload.url" in e["message"] for e in caught.value.errors)


def test_a_submitted_job_may_not_fan_out() -> None:
    _, errors = parse_job(
        {"kind": "noop", "fan_out": {"key": "t", "values": [1]}}, Config(), kinds=KindRules.named({"noop"})
    )
    assert [e["field"] for e in errors] == ["fan_out"]


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 7,
        "name": "every-minute",
        "kind": "interval",
        "interval_s": 60.0,
        "jitter": 0.1,
        "cron": None,
        "timezone": "UTC",
        "at": None,
        "job": {"kind": "noop", "payload": {}},
        "misfire": "fire_once",
        "overlap": "skip",
        "misfire_grace_s": 60.0,
        "enabled": True,
        "description": "every minute, for the tests",
        "paused": False,
        "source": "api",
        "last_job_id": 41,
        "last_job_state": "running",
        "fired_count": 3,
        "skipped_overlap_count": 2,
        "misfire_skipped_count": 1,
        "next_fire_at": NOW + timedelta(seconds=61),
        "next_slot_at": NOW + timedelta(seconds=60),
        "last_fire_at": NOW,
        "last_slot_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return base | changes


def test_a_schedule_shows_its_next_and_last_fire_its_last_job_and_its_counters() -> None:
    view = schedule_view(row())
    assert view["type"] == "interval" and view["cron"] is None and view["timezone"] is None
    assert (
        view["next_fire_at"] == "2026-03-01T12:01:01.000000Z" and view["last_fire_at"] == "2026-03-01T12:00:00.000000Z"
    )
    assert view["last_job"] == {"id": 41, "state": "running"}
    assert view["counters"] == {"fired": 3, "skipped_overlap": 2, "skipped_misfire": 1}
    assert schedule_view(row(last_job_id=None))["last_job"] is None


def test_a_patch_switching_the_timing_field_drops_the_old_one_and_keeps_the_rest() -> None:
    body = merged(definition_body(row()), {"cron": "0 * * * *", "timezone": "Europe/Berlin"})
    definition = parse(body, CHECK, anchor=NOW)
    assert definition.kind == "cron" and definition.overlap == "skip"
    assert merged(definition_body(row()), {"interval_s": 5}) | {"interval_s": 60.0} == definition_body(row())
    assert "jitter" not in merged(definition_body(row()), {"at": "2026-03-02T08:00:00Z"})
    assert parse(merged(definition_body(row()), {"overlap": "allow"}), CHECK, anchor=NOW).columns()["jitter"] == 0.1


def test_the_scheduler_shows_no_leader_when_none_ticked_recently() -> None:
    state = {
        "leader": "host-1-ab",
        "leader_since": NOW,
        "leader_alive": False,
        "paused": True,
        "last_tick_at": NOW,
        "due_backlog": 4,
        "last_fire_lag_s": 0.01,
        "next_fire_at": None,
        "schedules": 5,
        "active_schedules": 4,
    }
    view = scheduler_view(state)
    assert (view["leader"], view["last_leader"], view["paused"], view["due_backlog"]) == (None, "host-1-ab", True, 4)
    assert scheduler_view(state | {"leader_alive": True})["leader"] == "host-1-ab"


def test_changing_schedules_or_the_scheduler_needs_admin_and_reading_them_does_not() -> None:
    for method, path in [
        ("POST", "/schedules"),
        ("PATCH", "/schedules/1"),
        ("DELETE", "/schedules/1"),
        ("POST", "/schedules/1/trigger"),
        ("POST", "/scheduler/pause"),
        ("POST", "/scheduler/run"),
    ]:
        assert required_scope(method, "/api/v1" + path) == ADMIN, path
    assert required_scope("GET", "/api/v1/schedules/1/preview") == READ
    assert required_scope("GET", "/api/v1/scheduler") == READ


def test_the_firing_loop_sleeps_until_the_next_due_schedule_within_bounds() -> None:
    assert next_pause(None) == FIRE_INTERVAL_S
    assert next_pause(30.0) == FIRE_INTERVAL_S
    assert next_pause(0.25) == 0.25
    assert next_pause(-2.0) == MIN_PAUSE_S


def test_a_description_is_kept_and_shown_and_a_name_of_digits_only_is_refused() -> None:
    body = {"name": "tick", "interval_s": 5, "description": "market data, every 5 s", "job": {"kind": "noop"}}
    assert parse(body, CHECK, anchor=NOW).columns()["description"] == "market data, every 5 s"
    assert parse(body | {"description": None}, CHECK, anchor=NOW).description == ""
    assert definition_body(row())["description"] == "every minute, for the tests"
    assert schedule_view(row())["description"] == "every minute, for the tests"
    assert fields_of(body | {"name": "12"}) == {"name"}
    assert fields_of(body | {"description": "x" * 1001}) == {"description"}
    assert parse(body | {"name": "12a"}, CHECK, anchor=NOW).name == "12a"
