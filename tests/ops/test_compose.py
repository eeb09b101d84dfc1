"""compose.yaml: valid for `docker compose config`, and the local stack has what the issue asks for."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from tests.ops.config_names import unknown_variables
from tests.ops.tools import ROOT, assert_ok, run, tool

APP_SERVICES = ("gateway", "worker", "scheduler")


@cache
def _config() -> dict[str, Any]:
    output = assert_ok(run(tool("docker-compose"), "-f", ROOT / "compose.yaml", "config", "--format", "json"))
    return dict(json.loads(output))


def _services() -> dict[str, Any]:
    return dict(_config()["services"])


def test_compose_config_accepts_the_file() -> None:
    assert_ok(run(tool("docker-compose"), "-f", ROOT / "compose.yaml", "config", "-q"))


def test_the_stack_has_brokers_database_migration_services_and_monitoring() -> None:
    expected = {"rabbitmq", "postgres", "migrate", *APP_SERVICES, "prometheus", "grafana"}
    assert expected <= set(_services())


def test_two_workers_and_two_schedulers_run() -> None:
    for name in ("worker", "scheduler"):
        assert _services()[name].get("deploy", {}).get("replicas") == 2, name


def test_services_start_after_a_successful_migration_and_a_healthy_broker_and_database() -> None:
    for name in APP_SERVICES:
        depends = _services()[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert _services()["migrate"]["command"][0] == "migrate"
    assert _services()["migrate"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"  # it declares there


def test_every_long_running_service_has_a_healthcheck() -> None:
    missing = [name for name, service in _services().items() if name != "migrate" and "healthcheck" not in service]
    assert not missing


def _user(url: str) -> str:
    return url.split("//")[1].split(":")[0]


def test_each_service_connects_to_rabbitmq_and_postgresql_as_its_own_user() -> None:
    environments = {name: _services()[name]["environment"] for name in (*APP_SERVICES, "migrate")}
    amqp = {name: _user(env["GLEANER_AMQP_URL"]) for name, env in environments.items()}
    assert amqp == {name: f"gleaner-{name}" for name in environments}
    database = {name: _user(env["GLEANER_DATABASE_URL"]) for name, env in environments.items()}
    assert database == {name: f"gleaner_{name}" for name in environments}


def test_services_only_check_the_topology_the_migration_declares_and_grants_each_role_its_privileges() -> None:
    for name in APP_SERVICES:
        assert _services()[name]["environment"]["GLEANER_AMQP_DECLARE"] == "0", name
    command = _services()["migrate"]["command"]
    assert "--topology" in command
    grants = {arg.removeprefix("--grant=") for arg in command if arg.startswith("--grant=")}
    assert grants == {f"{name}=gleaner_{name}" for name in APP_SERVICES}


def test_postgres_creates_the_roles_with_deploy_s_roles_script_on_its_first_start() -> None:
    mounts = {v["target"]: v["source"] for v in _services()["postgres"]["volumes"] if v["type"] == "bind"}
    assert mounts["/gleaner/roles.sql"].endswith("deploy/postgres/roles.sql")
    init = next(source for target, source in mounts.items() if target.startswith("/docker-entrypoint-initdb.d/"))
    script = (ROOT / "deploy" / "postgres" / "compose-init.sh").read_text()
    assert init.endswith("deploy/postgres/compose-init.sh") and "/gleaner/roles.sql" in script
    for name in ("migrate", *APP_SERVICES):
        assert f"-v {'owner' if name == 'migrate' else name}=gleaner_{name}" in script, name


def test_every_gleaner_setting_in_compose_is_a_real_variable() -> None:
    for name in (*APP_SERVICES, "migrate"):
        assert not unknown_variables(_services()[name]["environment"]), name


def test_rabbitmq_enables_management_and_prometheus_plugins_from_deploy() -> None:
    targets = {v["target"]: v for v in _services()["rabbitmq"]["volumes"]}
    plugins_file = targets["/etc/rabbitmq/enabled_plugins"]["source"]
    assert plugins_file.endswith("deploy/rabbitmq/enabled_plugins")
    text = (ROOT / "deploy" / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in text and "rabbitmq_prometheus" in text


def test_prometheus_and_grafana_get_their_configuration_from_deploy() -> None:
    prometheus = {v["target"]: v["source"] for v in _services()["prometheus"]["volumes"] if v["type"] == "bind"}
    assert prometheus["/etc/prometheus/prometheus.yml"].endswith("deploy/prometheus/prometheus.yml")
    assert prometheus["/etc/prometheus/alerts.yaml"].endswith("deploy/prometheus/alerts.yaml")
    grafana = {
        Path(v["source"]).relative_to(ROOT / "deploy").as_posix()
        for v in _services()["grafana"]["volumes"]
        if v["type"] == "bind"
    }
    assert {"grafana/provisioning/datasources", "grafana/provisioning/dashboards", "grafana/dashboards"} <= grafana
