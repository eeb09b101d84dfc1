"""Submission validation is pure: a JSON body in, a JobSpec or field errors with paths out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gleaner.services.worker.handlers import load_registry
from gleaner.shared import priorities
from gleaner.shared.config import Config
from gleaner.shared.errors import ValidationProblem
from gleaner.shared.kind_rules import KindRules
from gleaner.shared.submission import (
    MAX_BATCH,
    LatestChecks,
    kind_names,
    parse_batch,
    parse_job,
    parse_one,
    template_check,
)

CONFIG = Config(queues=("default", "bulk"), default_max_attempts=4)
KINDS = load_registry(CONFIG).rules()


def fields(data: Any) -> list[str]:
    _, errors = parse_job(data, CONFIG, kinds=KINDS)
    return [e["field"] for e in errors]


def test_a_bare_kind_gets_the_configured_defaults() -> None:
    spec = parse_one({"kind": "noop"}, CONFIG)
    assert (spec.queue, spec.priority, spec.max_attempts, spec.payload) == ("default", 0, 4, {})
    assert (spec.timeout_s, spec.retry_base_s, spec.retry_cap_s) == (300.0, 1.0, 300.0)
    assert spec.run_at is None and spec.delay_s is None


def test_every_field_is_read_and_typed() -> None:
    spec = parse_one(
        {
            "kind": "scrape.pages",
            "payload": {"urls": []},
            "queue": "bulk",
            "priority": 9,
            "max_attempts": 2,
            "timeout_s": 5,
            "retry_base_s": 0.5,
            "retry_cap_s": 10,
            "run_at": "2030-01-01T00:00:00Z",
            "site": "indeed",
            "dedupe_key": "d",
        },
        CONFIG,
    )
    assert spec.run_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert (spec.queue, spec.priority, spec.timeout_s, spec.site, spec.dedupe_key) == ("bulk", 9, 5.0, "indeed", "d")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": 5}, "kind"),
        ({"kind": "Has Spaces"}, "kind"),
        ({"kind": "noop", "colour": "red"}, "colour"),
        ({"kind": "noop", "priority": 10}, "priority"),
        ({"kind": "noop", "priority": True}, "priority"),
        ({"kind": "noop", "priority": "urgent"}, "priority"),
        ({"kind": "noop", "queue": "nope"}, "queue"),
        ({"kind": "noop", "payload": [1]}, "payload"),
        ({"kind": "noop", "max_attempts": 0}, "max_attempts"),
        ({"kind": "noop", "timeout_s": -1}, "timeout_s"),
        ({"kind": "noop", "timeout_s": float("nan")}, "timeout_s"),
        ({"kind": "noop", "run_at": "yesterday-ish"}, "run_at"),
        ({"kind": "noop", "run_at": "2030-01-01T00:00:00"}, "run_at"),
        ({"kind": "noop", "run_at": "2030-01-01T00:00:00Z", "delay_s": 5}, "delay_s"),
        ({"kind": "noop", "retry_base_s": 10, "retry_cap_s": 1}, "retry_cap_s"),
        ({"kind": "http.fetch", "payload": {"url": "http://127.0.0.1/admin"}}, "payload.url"),
        ({"kind": "http.fetch", "payload": {"url": "file:///etc/passwd"}}, "payload.url"),
        ({"kind": "http.fetch", "payload": {}}, "payload.url"),
    ],
)
def test_an_invalid_field_is_named(body: dict[str, Any], field: str) -> None:
    assert field in fields(body)


def test_every_problem_is_reported_at_once() -> None:
    assert sorted(fields({"priority": 12, "queue": "x", "extra": 1})) == ["extra", "kind", "priority", "queue"]


def test_private_urls_pass_when_configured() -> None:
    config = Config(fetch_allow_private=True)
    kinds = load_registry(config).rules()
    assert (
        parse_one({"kind": "http.fetch", "payload": {"url": "http://127.0.0.1:8080/"}}, config, kinds).kind
        == "http.fetch"
    )


def test_a_non_object_body_is_a_422() -> None:
    with pytest.raises(ValidationProblem):
        parse_one([1, 2], CONFIG)


def test_batch_errors_carry_the_item_index() -> None:
    with pytest.raises(ValidationProblem) as caught:
        parse_batch({"jobs": [{"kind": "noop"}, {"kind": "noop", "priority": 12}, "x"]}, CONFIG)
    assert [e["field"] for e in caught.value.errors] == ["jobs[1].priority", "jobs[2]"]


@pytest.mark.parametrize("body", [{}, {"jobs": []}, {"jobs": {}}, {"jobs": [{"kind": "noop"}] * (MAX_BATCH + 1)}])
def test_a_batch_must_hold_one_to_a_thousand_jobs(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationProblem) as caught:
        parse_batch(body, CONFIG)
    assert caught.value.errors[-1]["field"] == "jobs"


def test_a_valid_batch_keeps_its_order() -> None:
    specs = parse_batch({"jobs": [{"kind": "a"}, {"kind": "b", "priority": 3}]}, CONFIG)
    assert [(s.kind, s.priority) for s in specs] == [("a", 0), ("b", 3)]


def test_an_unregistered_kind_is_named_with_the_registered_ones() -> None:
    _, errors = parse_job({"kind": "no.such.kind"}, CONFIG, kinds=KindRules.named({"noop", "sleep"}))
    assert [e["field"] for e in errors] == ["kind"]
    assert "noop, sleep" in errors[0]["message"]
    assert parse_one({"kind": "noop"}, CONFIG, kinds=KindRules.named({"noop"})).kind == "noop"


def test_a_soft_time_limit_is_read_and_must_fall_before_the_hard_timeout() -> None:
    assert parse_one({"kind": "noop", "timeout_s": 60, "soft_timeout_s": 50}, CONFIG).soft_timeout_s == 50
    assert parse_one({"kind": "noop"}, CONFIG).soft_timeout_s is None
    assert fields({"kind": "noop", "timeout_s": 60, "soft_timeout_s": 60}) == ["soft_timeout_s"]
    assert fields({"kind": "noop", "soft_timeout_s": 301}) == ["soft_timeout_s"]  # the default timeout_s is 300
    assert fields({"kind": "noop", "soft_timeout_s": 0}) == ["soft_timeout_s"]
    _, errors = parse_job({"kind": "noop", "timeout_s": 10, "soft_timeout_s": 20}, CONFIG)
    assert errors[0]["message"] == "must be below timeout_s (10)"


@pytest.mark.parametrize(("given", "number", "band"), [("high", 9, "high"), ("normal", 5, "normal"), ("low", 0, "low")])
def test_a_named_priority_is_the_number_of_its_band_in_jobs_batches_and_templates(
    given: str, number: int, band: str
) -> None:
    assert parse_one({"kind": "noop", "priority": given}, CONFIG).priority == number
    assert parse_batch({"jobs": [{"kind": "noop", "priority": given}]}, CONFIG)[0].priority == number
    assert template_check(CONFIG, None)({"kind": "noop", "priority": given}, "job.")["priority"] == number
    assert priorities.band(number) == band


def test_every_priority_number_is_in_exactly_one_band_and_an_unknown_name_is_a_422() -> None:
    assert sorted(n for numbers in priorities.BANDS.values() for n in numbers) == list(range(10))
    assert [priorities.band(n) for n in (0, 3, 4, 6, 7, 9)] == ["low", "low", "normal", "normal", "high", "high"]
    for bad in ("urgent", "HIGH", 10, True):
        spec, errors = parse_job({"kind": "noop", "priority": bad}, CONFIG)
        assert spec is None and errors[0]["field"] == "priority" and "high, normal, low" in errors[0]["message"]


def test_the_checks_are_made_again_only_when_the_registered_kinds_change() -> None:
    latest = LatestChecks(CONFIG)
    before = KindRules.named(["noop"])
    assert latest.of(before) is latest.of(before)
    with pytest.raises(ValidationProblem):
        parse_one({"kind": "fresh"}, CONFIG, before, latest.of(before))
    after = KindRules.named(["noop", "fresh"])
    assert latest.of(after) is not latest.of(before)
    assert parse_one({"kind": "fresh"}, CONFIG, after, latest.of(after)).kind == "fresh"


def test_bare_batch_jobs_get_the_specs_a_field_by_field_reading_gives() -> None:
    kinds = KindRules(frozenset({"noop", "bulky"}), queues={"bulky": "bulk"})
    items: list[dict[str, Any]] = [
        {"kind": "noop", "payload": {"i": 1}},
        {"kind": "bulky", "payload": {"i": 2}},
        {"kind": "noop"},
        {"kind": "noop", "payload": None},
        {"payload": {"i": 3}, "kind": "bulky"},
    ]
    specs = parse_batch({"jobs": items}, CONFIG, kinds, LatestChecks(CONFIG).of(kinds))
    # a null member is an absent one, and any member beside kind and payload takes the field-by-field reading
    read_one_by_one = [parse_one({**item, "site": None}, CONFIG, kinds) for item in items]
    assert specs == read_one_by_one
    assert [s.queue for s in specs] == ["default", "bulk", "default", "default", "bulk"]
    assert specs[2].payload == {} and specs[2].payload is not specs[3].payload


def test_bare_batch_jobs_are_still_refused_by_name_for_their_payload_or_the_defaults() -> None:
    with pytest.raises(ValidationProblem) as refused:
        parse_batch({"jobs": [{"kind": "noop"}, {"kind": "http.fetch", "payload": {}}]}, CONFIG, KINDS)
    assert [e["field"] for e in refused.value.errors] == ["jobs[1].payload.url"]
    crossed = Config(default_retry_base_s=10, default_retry_cap_s=5)
    with pytest.raises(ValidationProblem) as refused:
        parse_batch({"jobs": [{"kind": "noop"}, {"kind": "noop"}]}, crossed, KINDS)
    assert [e["field"] for e in refused.value.errors] == ["jobs[0].retry_cap_s", "jobs[1].retry_cap_s"]
    with pytest.raises(ValidationProblem) as refused:
        parse_batch({"jobs": [{"kind": "noop"}, {"kind": "nope"}, {"kind": "noop", "payload": []}]}, CONFIG, KINDS)
    assert [e["field"] for e in refused.value.errors] == ["jobs[1].kind", "jobs[2].payload"]


def test_the_kinds_a_body_names_skip_kinds_that_are_not_strings_whatever_json_they_are() -> None:
    # schemathesis sent {"kind": {}} in a job, a batch's `then` and a schedule's template: a 500 (unhashable dict)
    assert kind_names({"kind": {}, "payload": {}}) == set()
    assert kind_names({"jobs": [{"kind": "noop"}, {"kind": ["a"]}, "x"], "then": {"kind": {}}}) == {"noop"}
    assert kind_names({"jobs": [{"kind": "noop"}], "then": {"kind": "fail"}}) == {"noop", "fail"}
    assert kind_names([{"kind": {}}]) == set()
