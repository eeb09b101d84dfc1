"""Alert rules and the Prometheus config: promtool-valid, unit-tested, documented, using real metric names."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import yaml

from tests.ops.promql import metric_names, unknown_names
from tests.ops.tools import DEPLOY, assert_ok, run, tool

PROMETHEUS = DEPLOY / "prometheus"
ALERTS = PROMETHEUS / "alerts.yaml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yaml"))
REQUIRED_ANNOTATIONS = {"summary", "description", "runbook"}


@cache
def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_alert_rules() -> None:
    assert_ok(run(tool("promtool"), "check", "rules", ALERTS))


def test_the_alert_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    assert_ok(run(tool("promtool"), "test", "rules", *RULE_TESTS))


def test_promtool_accepts_the_prometheus_config() -> None:
    assert_ok(run(tool("promtool"), "check", "config", PROMETHEUS / "prometheus.yml"))


def test_the_issue_s_alerts_all_exist() -> None:
    names = {rule["alert"] for rule in _alerts()}
    expected = {
        "GleanerBacklogGrowing",
        "GleanerDeadLettersGrowing",
        "GleanerNoSchedulerLeader",
        "GleanerQueueHasNoConsumers",
        "GleanerNoWorkers",
        "GleanerJobFailureRatioHigh",
        "GleanerScheduleFireLagHigh",
        "GleanerGatewayErrors",
    }
    assert expected <= names, expected - names


def test_every_alert_waits_has_a_severity_and_tells_what_to_do() -> None:
    for rule in _alerts():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert set(rule["annotations"]) >= REQUIRED_ANNOTATIONS, rule["alert"]


def _expectations() -> dict[str, set[bool]]:
    """alertname -> {True if some test expects it to fire, False if some test expects silence}."""
    seen: dict[str, set[bool]] = {}
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for check in group.get("alert_rule_test", []):
                seen.setdefault(check["alertname"], set()).add(bool(check.get("exp_alerts")))
    return seen


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not() -> None:
    expectations = _expectations()
    for rule in _alerts():
        assert expectations.get(rule["alert"]) == {True, False}, rule["alert"]


def test_alert_expressions_use_only_metrics_that_exist_or_are_listed_as_pending() -> None:
    for rule in _alerts():
        assert not unknown_names(metric_names(rule["expr"])), rule["alert"]


def _scrape_jobs() -> set[str]:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    return {job["job_name"] for job in config["scrape_configs"]}


def test_job_labels_in_alerts_and_dashboards_match_the_scrape_jobs() -> None:
    texts = [ALERTS.read_text(), *(p.read_text() for p in (DEPLOY / "grafana" / "dashboards").glob("*.json"))]
    used = {job for text in texts for job in re.findall(r'job\\?="([a-z0-9-]+)\\?"', text)}
    assert used and used <= _scrape_jobs(), used - _scrape_jobs()


def test_prometheus_scrapes_rabbitmq_per_object_metrics_so_queues_have_a_label() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    rabbitmq = next(job for job in config["scrape_configs"] if job["job_name"] == "rabbitmq")
    assert rabbitmq["metrics_path"] == "/metrics/per-object"
    assert rabbitmq["static_configs"][0]["targets"] == ["rabbitmq:15692"]
