"""deploy/k8s: every kustomization renders, every object validates strictly, and the workloads are operable."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import yaml

from tests.ops.config_names import unknown_variables
from tests.ops.tools import DEPLOY, assert_ok, run, tool

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"
TARGETS = ("base", "overlays/dev", "overlays/production", "overlays/production-keda", "prometheus-adapter")
WORKLOADS = {"gleaner-gateway": 8080, "gleaner-worker": 8081, "gleaner-scheduler": 8082}
# Custom resources have no schema in kubernetes-validate: their required fields and known spec keys.
CUSTOM: dict[str, tuple[set[str], set[str]]] = {
    "ScaledObject": (
        {"scaleTargetRef", "triggers"},
        {
            "scaleTargetRef",
            "pollingInterval",
            "cooldownPeriod",
            "initialCooldownPeriod",
            "idleReplicaCount",
            "minReplicaCount",
            "maxReplicaCount",
            "fallback",
            "advanced",
            "triggers",
        },
    ),
    "TriggerAuthentication": (set(), {"secretTargetRef", "env", "podIdentity", "configMapTargetRef", "hashiCorpVault"}),
    "ServiceMonitor": (
        {"selector", "endpoints"},
        {"selector", "endpoints", "jobLabel", "namespaceSelector", "targetLabels", "podTargetLabels", "sampleLimit"},
    ),
}


@cache
def render(target: str) -> tuple[dict[str, Any], ...]:
    output = assert_ok(run(tool("kubectl"), "kustomize", K8S / target))
    return tuple(doc for doc in yaml.safe_load_all(output) if doc)


def _objects(target: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in render(target) if o["kind"] == kind}


def _validate_custom(obj: dict[str, Any]) -> None:
    required, known = CUSTOM[obj["kind"]]
    spec = obj.get("spec") or {}
    assert obj["metadata"].get("name"), obj
    assert required <= set(spec), (obj["kind"], obj["metadata"]["name"], required - set(spec))
    assert set(spec) <= known, (obj["kind"], obj["metadata"]["name"], "unknown fields", set(spec) - known)


@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_object_is_valid_against_the_kubernetes_schema(target: str) -> None:
    kubernetes_validate = _kubernetes_validate()
    assert render(target)
    for obj in render(target):
        if obj["kind"] in CUSTOM:
            _validate_custom(obj)
            continue
        problem = None
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problem = f"{target}: {obj['kind']}/{obj['metadata']['name']}: {error.message} at {list(error.path)}"
        if problem:
            pytest.fail(problem, pytrace=False)


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate  # type: ignore[import-untyped]
    except ImportError:
        pytest.fail("kubernetes-validate is not installed: run `bash scripts/install-ops-tools.sh`", pytrace=False)
    return kubernetes_validate


def _containers(target: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for kind in ("Deployment", "Job"):
        for name, obj in _objects(target, kind).items():
            pod = obj["spec"]["template"]["spec"]
            out.extend((name, pod, container) for container in pod["containers"])
    return out


@pytest.mark.parametrize("target", ("overlays/dev", "overlays/production"))
def test_every_container_runs_restricted_with_requests_and_limits(target: str) -> None:
    for name, pod, container in _containers(target):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name


@pytest.mark.parametrize("target", ("overlays/dev", "overlays/production"))
def test_every_service_is_probed_on_livez_and_readyz_at_its_own_port(target: str) -> None:
    deployments = _objects(target, "Deployment")
    assert set(deployments) == set(WORKLOADS)
    for name, port in WORKLOADS.items():
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [name.removeprefix("gleaner-")]
        assert [p["containerPort"] for p in container["ports"]] == [port], name
        assert container["startupProbe"]["httpGet"]["path"] == "/livez", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name


def _config(target: str) -> dict[str, str]:
    return next(
        o["data"] for o in render(target) if o["kind"] == "ConfigMap" and "gleaner-config" in o["metadata"]["name"]
    )


@pytest.mark.parametrize("target", ("base", "overlays/dev", "overlays/production"))
def test_a_stopping_worker_has_time_to_finish_its_longest_job_and_hand_back_the_rest(target: str) -> None:
    config = _config(target)
    grace = _objects(target, "Deployment")["gleaner-worker"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert grace > float(config["GLEANER_DEFAULT_TIMEOUT_S"]) + float(config["GLEANER_SHUTDOWN_GRACE_S"])


@pytest.mark.parametrize("target", ("base", "overlays/dev", "overlays/production"))
def test_a_recycling_worker_is_restarted_and_recycles_for_memory_before_its_limit_kills_it(target: str) -> None:
    pod = _objects(target, "Deployment")["gleaner-worker"]["spec"]["template"]["spec"]
    assert pod.get("restartPolicy", "Always") == "Always"
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    limit = container["resources"]["limits"]["memory"]
    limit_mb = int(limit.removesuffix("Gi")) * 1024 if limit.endswith("Gi") else int(limit.removesuffix("Mi"))
    assert 0 < int(env["GLEANER_WORKER_MAX_RSS_MB"]) < limit_mb
    assert not unknown_variables({name: value or "" for name, value in env.items()})


@pytest.mark.parametrize("target", ("base", "overlays/dev", "overlays/production"))
def test_the_config_map_holds_only_real_gleaner_settings(target: str) -> None:
    config = _config(target)
    assert all(key.startswith("GLEANER_") for key in config)
    assert not unknown_variables(config), unknown_variables(config)


def test_gateway_runs_at_least_two_replicas_behind_a_service_scaled_on_cpu() -> None:
    for target in ("overlays/dev", "overlays/production"):
        assert _objects(target, "Deployment")["gleaner-gateway"]["spec"]["replicas"] >= 2
        hpa = _objects(target, "HorizontalPodAutoscaler")["gleaner-gateway"]
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert _objects(target, "Service")["gleaner-gateway"]["spec"]["ports"][0]["port"] == 8080


def test_scheduler_runs_a_leader_and_a_standby() -> None:
    assert _objects("overlays/production", "Deployment")["gleaner-scheduler"]["spec"]["replicas"] == 2


def test_workers_scale_on_ready_messages_per_replica_and_scale_down_slowly() -> None:
    hpa = _objects("overlays/production", "HorizontalPodAutoscaler")["gleaner-worker"]["spec"]
    external = hpa["metrics"][0]["external"]
    assert external["metric"]["name"] == "gleaner_queue_messages_ready"
    assert external["target"]["type"] == "AverageValue"
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert "replicas" not in _objects("overlays/production", "Deployment")["gleaner-worker"]["spec"]


def test_the_adapter_rule_serves_the_metric_the_worker_hpa_asks_for() -> None:
    config_map = _objects("prometheus-adapter", "ConfigMap")["prometheus-adapter"]
    rules = yaml.safe_load(config_map["data"]["config.yaml"])["externalRules"]
    assert [rule["name"]["as"] for rule in rules] == ["gleaner_queue_messages_ready"]
    assert "rabbitmq_queue_messages_ready" in rules[0]["seriesQuery"]


def test_the_keda_component_replaces_the_worker_hpa_with_a_scaled_object() -> None:
    assert "gleaner-worker" not in _objects("overlays/production-keda", "HorizontalPodAutoscaler")
    assert "gleaner-gateway" in _objects("overlays/production-keda", "HorizontalPodAutoscaler")
    scaled = _objects("overlays/production-keda", "ScaledObject")["gleaner-worker"]["spec"]
    assert scaled["scaleTargetRef"]["name"] in _objects("overlays/production-keda", "Deployment")
    assert [t["type"] for t in scaled["triggers"]] == ["rabbitmq"]
    auth = scaled["triggers"][0]["authenticationRef"]["name"]
    assert auth in _objects("overlays/production-keda", "TriggerAuthentication")


def test_every_deployment_has_a_disruption_budget() -> None:
    budgets = _objects("overlays/production", "PodDisruptionBudget")
    for name in WORKLOADS:
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}


def test_the_migration_job_migrates_grants_every_service_role_and_declares_the_topology_once() -> None:
    job = _objects("overlays/production", "Job")["gleaner-migrate"]["spec"]
    args = job["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "migrate" and "--topology" in args
    grants = {arg.removeprefix("--grant=") for arg in args if arg.startswith("--grant=")}
    assert grants == {f"{name.removeprefix('gleaner-')}={name.replace('-', '_')}" for name in WORKLOADS}
    assert job["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("target", ("base", "overlays/dev", "overlays/production"))
def test_services_only_check_the_topology_the_migration_job_declares(target: str) -> None:
    assert _config(target)["GLEANER_AMQP_DECLARE"] == "0"


def _secret_refs(target: str) -> dict[str, set[str]]:
    return {
        name: {ref["secretRef"]["name"] for ref in container["envFrom"] if "secretRef" in ref}
        for name, _, container in _containers(target)
    }


def test_each_workload_reads_only_its_own_secret() -> None:
    assert _secret_refs("overlays/production") == {name: {name} for name in (*WORKLOADS, "gleaner-migrate")}


def test_dev_ships_example_secrets_with_every_key_the_workloads_read_and_production_none() -> None:
    secrets = _objects("overlays/dev", "Secret")
    assert set(secrets) == {*WORKLOADS, "gleaner-migrate"}
    for name, secret in secrets.items():
        data = secret["stringData"]
        assert {"GLEANER_DATABASE_URL", "GLEANER_AMQP_URL"} <= set(data), name
        # each as its own PostgreSQL role and RabbitMQ user (deploy/postgres/roles.sql, deploy/rabbitmq)
        assert data["GLEANER_DATABASE_URL"].split("//")[1].startswith(name.replace("-", "_") + ":"), name
        assert data["GLEANER_AMQP_URL"].split("//")[1].startswith(name + ":"), name
    assert set(secrets["gleaner-gateway"]["stringData"]) == {
        "GLEANER_DATABASE_URL",
        "GLEANER_AMQP_URL",
        "GLEANER_ADMIN_TOKEN",
        # the console's session secret, shared by every gateway replica
        "GLEANER_CONSOLE_SECRET",
    }
    assert not _objects("overlays/production", "Secret")
    assert set().union(*_secret_refs("overlays/dev").values()) <= set(secrets)
