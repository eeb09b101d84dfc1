"""Configuration is read once from the environment and every problem is reported with its variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gleaner.shared.config import KNOWN_NAMES, SETTINGS, Config
from gleaner.shared.errors import ConfigError


def test_defaults_work_against_a_local_broker_and_database() -> None:
    config = Config.from_env({})
    assert config.queues == ("default",)
    assert config.namespace == "gleaner"
    assert config.port_for("gateway") == 8080
    assert config.consumed_queues == ("default",)


def test_queues_and_worker_queues_are_parsed_from_comma_lists() -> None:
    config = Config.from_env(
        {"GLEANER_QUEUES": "scraping_high, scraping,maintenance", "GLEANER_WORKER_QUEUES": "scraping"}
    )
    assert config.queues == ("scraping_high", "scraping", "maintenance")
    assert config.consumed_queues == ("scraping",)


def test_every_problem_is_reported_at_once_with_the_variable_name() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(
            {
                "GLEANER_WORKER_CONCURRENCY": "many",
                "GLEANER_DELAY_UNIT_MS": "0",
                "GLEANER_QUEUES": "Bad Name",
                "GLEANER_HTTP_PORT": "70000",
                "GLEANER_FETCH_ALLOW_PRIVATE": "maybe",
                "GLEANER_LOG_LEVEL": "chatty",
                "GLEANER_DATABASE_URL": "mysql://x",
            }
        )
    text = str(caught.value)
    for name in (
        "GLEANER_WORKER_CONCURRENCY",
        "GLEANER_DELAY_UNIT_MS",
        "GLEANER_QUEUES",
        "GLEANER_HTTP_PORT",
        "GLEANER_FETCH_ALLOW_PRIVATE",
        "GLEANER_LOG_LEVEL",
        "GLEANER_DATABASE_URL",
    ):
        assert name in text
    assert len(caught.value.problems) == 7


def test_a_worker_cannot_consume_a_queue_that_is_not_configured() -> None:
    with pytest.raises(ConfigError, match="GLEANER_WORKER_QUEUES"):
        Config.from_env({"GLEANER_QUEUES": "a,b", "GLEANER_WORKER_QUEUES": "c"})


def test_a_short_admin_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="GLEANER_ADMIN_TOKEN"):
        Config.from_env({"GLEANER_ADMIN_TOKEN": "short"})


def test_the_longest_ttl_delay_follows_unit_and_levels() -> None:
    config = Config.from_env({"GLEANER_DELAY_UNIT_MS": "100", "GLEANER_DELAY_LEVELS": "10"})
    assert config.max_delay_s == pytest.approx(102.3)


def test_confirmed_rows_wait_for_their_marker_at_most_a_quarter_of_the_relay_grace() -> None:
    assert Config.from_env({}).mark_after_s == 0.5
    assert Config.from_env({"GLEANER_MARK_DELAY_S": "5", "GLEANER_RELAY_GRACE_S": "30"}).mark_after_s == 5.0
    assert Config.from_env({"GLEANER_MARK_DELAY_S": "5", "GLEANER_RELAY_GRACE_S": "1"}).mark_after_s == 0.25


def test_an_unknown_gleaner_variable_is_an_error_naming_the_closest_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"GLEANER_WORKER_CONCURENCY": "4", "GLEANER_RETENTON_DAYS": "90", "GLEANER_NONSENSE_XYZ": "1"})
    assert caught.value.problems == [
        "GLEANER_NONSENSE_XYZ: not a Gleaner setting",
        "GLEANER_RETENTON_DAYS: not a Gleaner setting; did you mean GLEANER_RETENTION_DAYS?",
        "GLEANER_WORKER_CONCURENCY: not a Gleaner setting; did you mean GLEANER_WORKER_CONCURRENCY?",
    ]


def test_the_test_tooling_variables_and_other_programs_variables_are_not_settings_and_pass() -> None:
    config = Config.from_env({"GLEANER_TEST_PG": "postgresql://x/y", "GLEANERX": "1", "PATH": "/bin"})
    assert config == Config()


def test_the_result_retention_has_its_own_setting_and_zero_keeps_forever() -> None:
    config = Config.from_env({"GLEANER_RETENTION_DAYS": "0", "GLEANER_RESULT_RETENTION_DAYS": "0"})
    assert (config.retention_days, config.result_retention_days) == (0.0, 0.0)
    assert Config.from_env({}).result_retention_days == 7.0
    with pytest.raises(ConfigError, match="GLEANER_RESULT_RETENTION_DAYS"):
        Config.from_env({"GLEANER_RESULT_RETENTION_DAYS": "-1"})


def readme_settings() -> dict[str, str]:
    """Each variable of the README's settings table and its default as shown; a row naming several variables
    (`A` / `B`, or `A`, `B`) gives their defaults in the same order, with the same separator."""
    section = (Path(__file__).resolve().parents[2] / "README.md").read_text().split("## Configuration", 1)[1]
    shown: dict[str, str] = {}
    for line in section.split("\n## ", 1)[0].splitlines():
        if not line.startswith("| `GLEANER_"):
            continue
        names, defaults = (cell.strip() for cell in line.split(" | ")[:2])
        separator = " / " if " / " in names else ", "
        variables = [name.strip("|` ") for name in names.split(separator)]
        values = defaults.split(separator) if len(variables) > 1 else [defaults]
        assert len(values) == len(variables), line
        shown.update(zip(variables, values, strict=True))
    return shown


def test_the_readme_table_lists_exactly_the_declared_settings_with_their_defaults() -> None:
    assert readme_settings() == {setting.name: setting.shown for setting in SETTINGS}


def test_the_known_names_are_the_declared_settings_and_each_is_read_by_from_env() -> None:
    assert {f"GLEANER_{f.name.upper()}" for f in dataclasses.fields(Config)} == KNOWN_NAMES
    assert Config.from_env({}) == Config()
    for setting in SETTINGS:
        if isinstance(setting.default, int | float) and not isinstance(setting.default, bool):
            with pytest.raises(ConfigError, match=f"{setting.name}='nope': not a valid"):
                Config.from_env({setting.name: "nope"})
