"""A real Prometheus scrapes the running services: their /metrics pass promtool, and every dashboard panel
and alert expression evaluates through Prometheus's HTTP API, the overview's core panels with data."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import generate_latest

from gleaner.shared.metrics import Metrics
from tests.ops.tools import DEPLOY, tool
from tests.support.contract import checked_session
from tests.support.services import port_open
from tests.support.stack import Api, Service, Stack, eventually, free_port

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
SCRAPE_INTERVAL = "1s"
RATE_INTERVAL = "30s"
# Overview panels that must show data once a workload has run (the rest may be legitimately empty).
CORE_PANELS = {
    "Workers up",
    "Jobs running",
    "Completed by outcome",
    "Submitted, enqueued, started",
    "Job duration",
    "Queue wait (due to start)",
    "Targets up",
}
WORKLOAD_JOBS = 20


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    async def query(self, session: aiohttp.ClientSession, expr: str) -> dict[str, Any]:
        async with session.get(f"{self.url}/api/v1/query", params={"query": expr}) as response:
            return dict(await response.json(content_type=None))


def _config(services: dict[str, Service]) -> dict[str, Any]:
    jobs = [
        {"job_name": f"gleaner-{name}", "static_configs": [{"targets": [f"127.0.0.1:{service.port}"]}]}
        for name, service in services.items()
    ]
    if port_open(15692):
        jobs.append(
            {
                "job_name": "rabbitmq",
                "metrics_path": "/metrics/per-object",
                "static_configs": [{"targets": ["127.0.0.1:15692"]}],
            }
        )
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": jobs,
    }


@pytest.fixture
async def services(stack: Stack) -> dict[str, Service]:
    return {
        "gateway": await stack.start("gateway"),
        "worker": await stack.start("worker"),
        "scheduler": await stack.start("scheduler"),
    }


def _start_prometheus(services: dict[str, Service], directory: Path) -> Prometheus:
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(_config(services)))
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(tool("prometheus")),
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Prometheus(f"http://127.0.0.1:{port}", process, log)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _promtool_check_metrics(body: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(tool("promtool")), "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )


@pytest.fixture
async def prometheus(services: dict[str, Service], tmp_path: Path) -> AsyncIterator[Prometheus]:
    server = _start_prometheus(services, tmp_path)

    async def ready() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{server.log.read_text(errors='replace')[-3000:]}")
        try:
            async with checked_session() as session, session.get(f"{server.url}/-/ready") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await eventually(ready, timeout_s=30, what="prometheus ready")
        yield server
    finally:
        _stop(server.process)


def _panel_queries() -> list[tuple[str, str, str]]:
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((dashboard["uid"], panel["title"], _instantiate(target["expr"])))
    return queries


def _instantiate(expr: str) -> str:
    """What Grafana sends: variables replaced by their values (All = .*)."""
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    return re.sub(r"\$\{?(\w+)(?::\w+)?\}?", ".*", expr)


@pytest.mark.e2e
async def test_every_service_s_metrics_pass_promtool(services: dict[str, Service]) -> None:
    async with checked_session() as session:
        for name, service in services.items():
            async with session.get(f"{service.url}/metrics") as response:
                body = await response.read()
            result = _promtool_check_metrics(body)
            assert result.returncode == 0, f"{name}: {result.stdout.decode()}{result.stderr.decode()}"


@pytest.mark.e2e
async def test_every_panel_and_alert_query_evaluates_and_the_overview_shows_the_workload(
    services: dict[str, Service], prometheus: Prometheus, api_factory: type[Api]
) -> None:
    api = api_factory(services["gateway"].url)
    jobs = [await api.submit(kind="noop", payload={"n": n}) for n in range(WORKLOAD_JOBS)]
    for job in jobs:
        assert (await api.job(job["id"], wait=20))["state"] == "succeeded"

    async with checked_session() as session:

        async def completions_scraped() -> bool:
            result = await prometheus.query(session, "sum(gleaner_jobs_completed_total)")
            values = result.get("data", {}).get("result", [])
            return bool(values) and float(values[0]["value"][1]) >= WORKLOAD_JOBS

        await eventually(completions_scraped, timeout_s=30, what="prometheus to scrape the completed jobs")
        await asyncio.sleep(3)  # two more scrapes so every rate() window holds at least two samples

        empty_core = []
        for uid, title, expr in _panel_queries():
            result = await prometheus.query(session, expr)
            assert result["status"] == "success", (uid, title, expr, result)
            if uid == "gleaner-overview" and title in CORE_PANELS and not result["data"]["result"]:
                empty_core.append(title)
        assert not empty_core, f"overview panels without data after a workload: {empty_core}"

        groups = yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in (r for g in groups for r in g["rules"]):
            result = await prometheus.query(session, rule["expr"])
            assert result["status"] == "success", (rule["alert"], result)


# Offline halves of the above: no services needed, so they run even while the services are being written.


@pytest.fixture
async def empty_prometheus(tmp_path: Path) -> AsyncIterator[Prometheus]:
    server = _start_prometheus({}, tmp_path)

    async def ready() -> bool:
        try:
            async with checked_session() as session, session.get(f"{server.url}/-/ready") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await eventually(ready, timeout_s=30, what="prometheus ready")
        yield server
    finally:
        _stop(server.process)


async def test_every_panel_and_alert_expression_parses_in_a_real_prometheus(empty_prometheus: Prometheus) -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    alerts = [("alerts", rule["alert"], rule["expr"]) for g in groups for rule in g["rules"]]
    async with checked_session() as session:
        for uid, title, expr in [*_panel_queries(), *alerts]:
            result = await empty_prometheus.query(session, expr)
            assert result["status"] == "success", (uid, title, expr, result.get("error"))


def test_the_metrics_gleaner_defines_pass_promtool_check_metrics() -> None:
    metrics = Metrics("ops-test")
    metrics.http_requests.labels("GET", "/api/v1/jobs/{id}", "200").inc()
    metrics.http_duration.labels("GET", "/api/v1/jobs/{id}").observe(0.01)
    metrics.completed.labels("noop", "default", "succeeded").inc()
    metrics.duration.labels("noop", "default").observe(0.2)
    metrics.queue_wait.labels("default").observe(0.5)
    metrics.jobs_by_state.labels("queued", "default").set(3)
    result = _promtool_check_metrics(generate_latest(metrics.registry))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
