"""Seed 004's APScheduler-style schedule file converted to Gleaner's format (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gleaner.services.scheduler import apscheduler_file
from gleaner.services.scheduler.apscheduler_file import SeedFileError, convert, cron_expression, day_of_week
from gleaner.services.scheduler.schedule_file import SeedOptions, load
from gleaner.shared.config import Config
from gleaner.shared.kind_rules import KindRules
from gleaner.shared.scheduling import planner
from gleaner.shared.submission import template_check

NOW = datetime(2026, 3, 1, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed004_scraper_schedules.yaml"


@pytest.mark.parametrize(
    ("fields", "expression"),
    [
        ({"hour": 10, "minute": 30, "day_of_week": "0-4"}, "30 10 * * 1-5"),
        ({"hour": 10}, "0 10 * * *"),  # below the last field given: the minimum
        ({"minute": "*/15"}, "*/15 * * * *"),  # above it: every value
        ({"second": "*/10"}, "*/10 * * * * *"),
        ({"second": 5, "minute": 1}, "5 1 * * * *"),
        ({"day": 1}, "0 0 1 * *"),
        ({"month": 6}, "0 0 1 6 *"),
        ({"day_of_week": "sat,sun"}, "0 0 * * sat,sun"),
        ({"day_of_week": "5-6", "hour": 8}, "0 8 * * 6-7"),
    ],
)
def test_cron_fields_take_apschedulers_defaults_and_monday_is_day_zero(fields: dict[str, Any], expression: str) -> None:
    assert cron_expression("s", fields) == expression
    planner.cron(expression)  # a valid expression


def test_apscheduler_day_numbers_shift_to_cron_numbers() -> None:
    assert day_of_week("s", "0") == "1" and day_of_week("s", "6") == "7"
    assert day_of_week("s", "0,2,4") == "1,3,5" and day_of_week("s", "*/2") == "1-7/2"
    with pytest.raises(SeedFileError, match="day_of_week"):
        day_of_week("s", "7")


def test_the_seed_example_converts_entry_by_entry() -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    assert apscheduler_file.is_seed_format(document)
    converted = convert(document, timezone="America/Sao_Paulo", kinds={"B3": "noop"})
    by_name = {entry["name"]: entry for entry in converted["schedules"]}
    custom = by_name["my_custom_schedule"]
    assert custom == {
        "name": "my_custom_schedule",
        "description": "My custom schedule",
        "cron": "30 10 * * 1-5",
        "timezone": "America/Sao_Paulo",
        "enabled": True,
        "job": {
            "kind": "noop",
            "payload": {"scraper": "B3"},
            "priority": "high",
            "fan_out": {"key": "ticker", "values": ["PETR4", "VALE3"]},
        },
    }
    assert by_name["crypto_updates"]["interval_s"] == 900 and by_name["crypto_updates"]["jitter"] == 0
    assert by_name["crypto_updates"]["job"]["kind"] == "binance"  # a scraper not mapped: its name in lower case
    assert by_name["one_time_backfill"]["at"] == "2030-11-07T15:30:00-03:00"
    assert by_name["complete_market_scan"]["enabled"] is False


def test_every_bad_entry_is_named_at_once() -> None:
    document = {
        "schedules": {
            "a": {"type": "cron", "scraper": "B3", "hours": 2},
            "b": {"type": "weekly", "scraper": "B3"},
            "c": {"type": "interval", "scraper": "B3"},
            "d": {"type": "date", "scraper": "B3", "run_date": "soon"},
            "e": {"type": "interval", "seconds": 5},
        }
    }
    with pytest.raises(SeedFileError) as caught:
        convert(document, timezone="UTC", kinds={})
    message = str(caught.value)
    assert "schedules.a: unknown fields for type cron: hours" in message
    assert "schedules.b.type" in message and "schedules.c: an interval entry needs" in message
    assert "schedules.d.run_date" in message and "schedules.e: needs `scraper`" in message


def test_the_example_loads_as_definitions_with_named_priorities_as_numbers() -> None:
    check = template_check(Config(), KindRules.named({"noop"}))
    seed = SeedOptions("America/Sao_Paulo", {"B3": "noop", "FUNDAMENTUS": "noop", "BINANCE": "noop"})
    desired = load(EXAMPLE, check, NOW, seed)
    priorities = {d.name: d.job["priority"] for d in desired.schedules}
    assert priorities["my_custom_schedule"] == 9 and priorities["crypto_updates"] == 5
    assert priorities["health_probe"] == 0
    assert {d.name: d.kind for d in desired.schedules}["one_time_backfill"] == "once"
