"""Schedule definitions (API bodies and file entries) and the declarative file's plan."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gleaner.services.scheduler.schedule_file import FileError, Plan, load, plan, plan_sites
from gleaner.shared.errors import ValidationProblem
from gleaner.shared.scheduling import planner
from gleaner.shared.scheduling.definitions import Definition, parse

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def template(job: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(job, dict) or not isinstance(job.get("kind"), str):
        raise ValidationProblem([{"field": prefix + "kind", "message": "required"}])
    return {"kind": job["kind"], "payload": job.get("payload", {}), "queue": "default", "priority": 0}


def fields(body: Any) -> set[str]:
    with pytest.raises(ValidationProblem) as caught:
        parse(body, template, anchor=NOW)
    return {e["field"] for e in caught.value.errors}


def test_an_interval_definition_parses_with_its_defaults() -> None:
    d = parse({"name": "every-minute", "interval_s": 60, "job": {"kind": "noop"}}, template, anchor=NOW)
    assert d.kind == "interval"
    assert d.spec == planner.Interval(60.0, NOW, 0.1)
    assert (d.misfire, d.overlap, d.enabled) == ("fire_once", "allow", True)
    assert d.columns()["cron"] is None


def test_cron_and_once_definitions_parse() -> None:
    cron = parse(
        {"name": "c", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "job": {"kind": "x"}}, template, anchor=NOW
    )
    assert cron.columns()["timezone"] == "Europe/Berlin"
    once = parse({"name": "o", "at": "2026-03-02T08:00:00Z", "job": {"kind": "x"}}, template, anchor=NOW)
    assert once.columns()["at"] == datetime(2026, 3, 2, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "cron": "61 * * * *", "job": {"kind": "x"}}, "cron"),
        ({"name": "a", "cron": "* * *", "job": {"kind": "x"}}, "cron"),
        ({"name": "a", "cron": "0 2 * * *", "timezone": "Mars/Olympus", "job": {"kind": "x"}}, "timezone"),
        ({"name": "a", "interval_s": 0, "job": {"kind": "x"}}, "interval_s"),
        ({"name": "a", "interval_s": -5, "job": {"kind": "x"}}, "interval_s"),
        ({"name": "a", "interval_s": "5", "job": {"kind": "x"}}, "interval_s"),
        ({"name": "a", "interval_s": 5, "jitter": 0.9, "job": {"kind": "x"}}, "jitter"),
        ({"name": "a", "at": "tomorrow", "job": {"kind": "x"}}, "at"),
        ({"name": "a", "at": "2026-03-02T08:00:00", "job": {"kind": "x"}}, "at"),
        ({"name": "a", "interval_s": 5, "cron": "* * * * *", "job": {"kind": "x"}}, "interval_s"),
        ({"name": "a", "job": {"kind": "x"}}, "interval_s"),
        ({"name": "a b", "interval_s": 5, "job": {"kind": "x"}}, "name"),
        ({"name": "a", "interval_s": 5, "job": {}}, "job.kind"),
        ({"name": "a", "interval_s": 5}, "job"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "x"}, "misfire": "always"}, "misfire"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "x"}, "overlap": "never"}, "overlap"),
        ({"name": "a", "interval_s": 5, "job": {"kind": "x"}, "colour": "red"}, "colour"),
        ({"name": "a", "interval_s": 5, "type": "cron", "job": {"kind": "x"}}, "type"),
    ],
)
def test_an_invalid_definition_names_the_field(body: dict[str, Any], field: str) -> None:
    assert field in fields(body)


def test_every_problem_is_reported_at_once() -> None:
    assert fields({"name": "", "interval_s": 0, "misfire": "x"}) >= {"name", "interval_s", "job", "misfire"}


def row(definition: Definition, **changes: Any) -> dict[str, Any]:
    return {**definition.columns(), "source": "file", **changes}


def test_plan_creates_updates_disables_and_leaves_equal_entries_alone() -> None:
    keep = parse({"name": "keep", "interval_s": 60, "job": {"kind": "noop"}}, template, anchor=NOW)
    edit = parse({"name": "edit", "interval_s": 30, "job": {"kind": "noop"}}, template, anchor=NOW)
    new = parse({"name": "new", "cron": "0 * * * *", "job": {"kind": "noop"}}, template, anchor=NOW)
    current = [
        row(keep),
        row(edit, interval_s=60.0),
        row(keep, name="gone"),
        row(keep, name="gone-already", enabled=False),
        row(keep, name="made-by-api", source="api"),
    ]
    result = plan([keep, edit, new], current)
    assert [c.describe() for c in result.changes] == ["update edit (interval_s)", "create new", "disable gone"]
    assert result.unchanged == ["keep"]


def test_an_entry_taking_over_an_api_schedule_is_an_update() -> None:
    keep = parse({"name": "keep", "interval_s": 60, "job": {"kind": "noop"}}, template, anchor=NOW)
    assert [c.describe() for c in plan([keep], [row(keep, source="api")]).changes] == ["update keep (source)"]


def test_the_example_file_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "schedules.yaml"
    names = [d.name for d in load(example, template, NOW).schedules]
    assert "nightly-ingestion" in names and "weekly-cleanup" in names and len(names) == 5


def test_a_bad_file_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "schedules:\n  - {name: a, interval_s: 0, job: {kind: x}}\n  - {name: a, cron: nope, job: {kind: x}}\n"
    )
    with pytest.raises(FileError) as caught:
        load(path, template, NOW)
    assert "schedules[0].interval_s" in str(caught.value) and "schedules[1].cron" in str(caught.value)
    path.write_text("schedules: [\n")
    with pytest.raises(FileError, match="cannot read"):
        load(path, template, NOW)


def test_a_files_sites_are_validated_like_a_put_and_planned_by_their_differing_fields(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("schedules: []\nsites:\n  indeed: {requests_per_hour: 60}\n  bad: {burst: 0, min_delay_s: -1}\n")
    with pytest.raises(FileError) as caught:
        load(path, template, NOW)
    assert "sites.bad.burst" in str(caught.value) and "sites.bad.min_delay_s" in str(caught.value)
    path.write_text("sites:\n  indeed: {requests_per_hour: 60}\n  usgov: {max_concurrency: 1}\n  same: {}\n")
    sites = load(path, template, NOW).sites
    current = {
        "usgov": {**asdict(sites["usgov"]), "max_concurrency": None},
        "same": asdict(sites["same"]),
    }
    result = Plan()
    plan_sites(result, sites, current)
    described = [change.describe() for change in result.site_changes]
    assert described == ["create site indeed", "update site usgov (max_concurrency)"]
    assert result.sites_unchanged == ["same"]


def test_a_cron_with_a_bad_expression_and_a_bad_timezone_reports_both() -> None:
    body = {"name": "a", "cron": "61 * * * *", "timezone": "Mars/Olympus", "job": {"kind": "x"}}

    assert fields(body) == {"cron", "timezone"}
