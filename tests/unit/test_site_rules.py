"""Site policies as PUT /sites/{name} takes them: defaults, every bad field named, the scope it needs."""

from __future__ import annotations

from typing import Any

import pytest

from gleaner.services.gateway.auth import ADMIN, READ, required_scope
from gleaner.services.worker.politeness import RespectfulHours
from gleaner.shared.errors import ValidationProblem
from gleaner.shared.site_rules import SitePolicy, parse_site

OFFICE = {"timezone": "Europe/Berlin", "start": "09:00", "end": "17:30", "factor": 2}


def fields_of(name: str, body: Any) -> dict[str, str]:
    with pytest.raises(ValidationProblem) as caught:
        parse_site(name, body)
    assert caught.value.status == 422
    return {e["field"]: e["message"] for e in caught.value.errors}


def test_an_empty_body_is_the_default_policy() -> None:
    assert parse_site("shop", {}) == SitePolicy()
    assert parse_site("shop", {"max_concurrency": None, "user_agent": None}) == SitePolicy()


def test_a_full_policy_is_read_with_numbers_as_floats() -> None:
    body = {
        "requests_per_hour": 120,
        "burst": 3,
        "min_delay_s": 1,
        "pause_min_s": 0.5,
        "pause_max_s": 2,
        "respectful_hours": OFFICE,
        "max_concurrency": 1,
        "partial_error_ratio": 0.1,
        "timeout_s": 10,
        "max_bytes": 1_000_000,
        "user_agent": "GleanerBot/1.0 (+https://example.com/bot)",
    }
    policy = parse_site("us_state_dept", body)
    assert policy.requests_per_hour == 120.0 and isinstance(policy.requests_per_hour, float)
    assert (policy.burst, policy.max_concurrency, policy.max_bytes) == (3, 1, 1_000_000)
    assert policy.respectful_hours == {**OFFICE, "factor": 2.0}


def test_stored_respectful_hours_are_what_the_worker_reads() -> None:
    policy = parse_site("shop", {"respectful_hours": {**OFFICE, "start": "22:00", "end": "06:00:30"}})
    hours = RespectfulHours.from_json(policy.respectful_hours)
    assert hours is not None and hours.factor == 2.0 and str(hours.end) == "06:00:30"


def test_a_lone_minimum_pause_is_a_fixed_pause() -> None:
    policy = parse_site("shop", {"pause_min_s": 2})
    assert (policy.pause_min_s, policy.pause_max_s) == (2.0, 2.0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requests_per_hour": 0}, "requests_per_hour"),
        ({"requests_per_hour": "60"}, "requests_per_hour"),
        ({"requests_per_hour": 1e-9}, "requests_per_hour"),
        ({"requests_per_hour": 1e-300}, "requests_per_hour"),
        ({"requests_per_hour": 0.009}, "requests_per_hour"),
        ({"burst": 0}, "burst"),
        ({"burst": 1.5}, "burst"),
        ({"burst": True}, "burst"),
        ({"min_delay_s": -1}, "min_delay_s"),
        ({"pause_min_s": 3, "pause_max_s": 1}, "pause_max_s"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"partial_error_ratio": 1.5}, "partial_error_ratio"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": 2**40}, "max_bytes"),
        ({"user_agent": ""}, "user_agent"),
        ({"user_agent": "Bot\r\nX-Injected: 1"}, "user_agent"),
        ({"user_agent": "x" * 513}, "user_agent"),
        ({"respectful_hours": "09:00-17:00"}, "respectful_hours"),
        ({"respectful_hours": {"timezone": "UTC", "start": "09:00", "end": "17:00"}}, "respectful_hours"),
        ({"respectful_hours": {**OFFICE, "colour": "red"}}, "respectful_hours"),
        ({"respectful_hours": {**OFFICE, "timezone": "Mars/Olympus_Mons"}}, "respectful_hours.timezone"),
        ({"respectful_hours": {**OFFICE, "timezone": "../../etc/passwd"}}, "respectful_hours.timezone"),
        ({"respectful_hours": {**OFFICE, "timezone": 1}}, "respectful_hours.timezone"),
        ({"respectful_hours": {**OFFICE, "start": "9am"}}, "respectful_hours.start"),
        ({"respectful_hours": {**OFFICE, "end": "24:00"}}, "respectful_hours.end"),
        ({"respectful_hours": {**OFFICE, "factor": 0.5}}, "respectful_hours.factor"),
        ({"colour": "red"}, "colour"),
        ({"name": "other"}, "name"),
    ],
)
def test_a_bad_field_is_refused_by_its_name(body: dict[str, Any], field: str) -> None:
    assert field in fields_of("shop", body)


def test_every_bad_field_is_reported_at_once() -> None:
    body = {"burst": 0, "timeout_s": -1, "respectful_hours": {**OFFICE, "timezone": "Nowhere"}, "extra": 1}
    assert set(fields_of("shop", body)) == {"burst", "timeout_s", "respectful_hours.timezone", "extra"}


@pytest.mark.parametrize("name", ["", "Shop", "-shop", "a b", "x" * 64, "shop/1", "shop\n", "Foo:Bar", "a\x00"])
def test_a_name_the_sites_table_would_refuse_is_refused(name: str) -> None:
    assert "name" in fields_of(name, {})


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert fields_of("shop", [1, 2]) == {"body": "must be a JSON object"}


def test_the_read_only_part_of_a_get_body_may_be_sent_back() -> None:
    body = {"name": "shop", "burst": 2, "state": {"tokens_left": 1}, "created_at": "x", "updated_at": "y"}
    assert parse_site("shop", body) == SitePolicy(burst=2)


def test_changing_a_site_needs_the_admin_scope_and_reading_it_does_not() -> None:
    assert required_scope("PUT", "/api/v1/sites/shop") == ADMIN
    assert required_scope("GET", "/api/v1/sites/shop") == READ
    assert required_scope("GET", "/api/v1/stats") == READ
