"""Grafana dashboards: fixed uids, a templated datasource, $__rate_interval, and only real metric names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.promql import metric_names, unknown_names, variable_metric_names, without_strings
from tests.ops.tools import DEPLOY

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE = "${datasource}"
CURRENT_SCHEMA = 39  # Grafana 11.0; Grafana 12 writes 41
RANGE = re.compile(r"\[([^\]]*)\]")
RATE_CALL = re.compile(r"\b(rate|increase|irate)\s*\(")


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_the_four_boards_exist() -> None:
    uids = {_load(path)["uid"] for path in DASHBOARDS}
    assert {"gleaner-overview", "gleaner-scheduler", "gleaner-sites", "gleaner-gateway"} <= uids


def test_dashboard_uids_are_fixed_unique_and_match_the_file_name() -> None:
    uids = [_load(path)["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        assert _load(path)["uid"] == path.stem


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_a_dashboard_uses_a_current_schema_and_a_templated_prometheus_datasource(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["schemaVersion"] >= CURRENT_SCHEMA
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] == DATASOURCE for t in panel["targets"]), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_rate_and_increase_uses_the_rate_interval(path: Path) -> None:
    for title, expr in _exprs(_load(path)):
        code = without_strings(expr)
        ranges = RANGE.findall(code)
        assert len(ranges) == len(RATE_CALL.findall(code)), (title, expr)
        assert all(r == "$__rate_interval" for r in ranges), (title, expr)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panel_and_variable_queries_use_only_metrics_that_exist_or_are_listed_as_pending(path: Path) -> None:
    dashboard = _load(path)
    for title, expr in _exprs(dashboard):
        names = metric_names(expr)
        assert names, (title, expr)
        assert not unknown_names(names), f"panel {title!r}: unknown metric {unknown_names(names)} in {expr}"
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            text = query["query"] if isinstance(query, dict) else query
            assert not unknown_names(variable_metric_names(text)), variable["name"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_have_unique_ids_and_a_place_on_the_grid(path: Path) -> None:
    panels = list(_panels(_load(path)))
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]


def test_provisioning_loads_the_dashboards_folder_and_a_prometheus_datasource() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "gleaner.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file" and providers[0]["options"]["path"] == "/etc/grafana/dashboards"
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert [s["type"] for s in sources["datasources"]] == ["prometheus"]
