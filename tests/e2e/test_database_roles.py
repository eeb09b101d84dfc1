"""Each service as its own PostgreSQL role (deploy/postgres/roles.sql, `gleaner migrate --grant`): the whole
workload runs on exactly gleaner/shared/grants.py's privileges, and the worker cannot read api_keys."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from yarl import URL

from gleaner.shared.config import Config
from gleaner.shared.grants import GRANTS, OWNER_ONLY, SERVICES
from tests.e2e.test_lifecycle import wait_state
from tests.integration.test_sites_support import PageServer, pages
from tests.support import services
from tests.support.stack import Api, Stack, eventually

ROLES_SQL = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "roles.sql"
DENIED = ("permission denied", "InsufficientPrivilege", "must be owner")
SCHEMA_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"


@dataclass(frozen=True, slots=True)
class Roles:
    """A database and its roles, named after a unique prefix: `<p>` the database, `<p>_owner`, `<p>_<service>`."""

    prefix: str

    @property
    def database(self) -> str:
        return self.prefix

    def role(self, who: str) -> str:
        return f"{self.prefix}_{who}"

    def dsn(self, who: str) -> str:
        return str(URL(services.PG_ADMIN).with_user(self.role(who)).with_path(f"/{self.database}"))

    def grant_args(self) -> list[str]:
        return [f"--grant={service}={self.role(service)}" for service in SERVICES]


async def _psql(*args: str) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is not installed (it comes with PostgreSQL's client package)")
    process = await asyncio.create_subprocess_exec(
        psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", services.PG_ADMIN, *args, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


@pytest.fixture
async def roles() -> AsyncIterator[Roles]:
    services.require_services()
    made = Roles(services.unique("gl_"))
    names = {who: made.role(who) for who in ("owner", *SERVICES)}
    try:
        await _psql(
            *(f"-v{who}={name}" for who, name in names.items()), f"-vdatabase={made.database}", "-f", str(ROLES_SQL)
        )
        yield made
    finally:
        await services.drop_database(made.database)
        admin = await asyncpg.connect(services.PG_ADMIN)
        try:
            for name in names.values():
                await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            await admin.close()


@pytest.fixture
async def granted(roles: Roles, namespace: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The database migrated and granted by its owner; a stack (no services yet) on the owner's environment."""
    env = services.test_env(roles.dsn("owner"), namespace, GLEANER_FETCH_ALLOW_PRIVATE="1")
    stack = Stack(env, tmp_path)
    assert "granted" in await stack.run_cli("migrate", *roles.grant_args())
    yield stack
    stack.stop_all()
    await services.delete_topology(Config.from_env(env))


async def test_every_service_runs_the_whole_workload_as_its_own_role(
    roles: Roles, granted: Stack, api_factory: type[Api]
) -> None:
    own = {service: {"GLEANER_DATABASE_URL": roles.dsn(service)} for service in SERVICES}
    await granted.start("worker", **own["worker"])
    await granted.start("scheduler", GLEANER_PRUNE_INTERVAL_S="0.5", **own["scheduler"])
    api = api_factory((await granted.start("gateway", **own["gateway"])).url)
    key = await granted.run_cli("apikey", "create", "--name", "reader", "--scopes", "jobs:read", env=own["gateway"])
    reader = api_factory(api.base_url.removesuffix("/api/v1"), token=key.split()[-1])
    await _jobs_and_dead_letters(api)
    await _sites_and_results(api)
    await _queues_workers_and_stats(api)
    await _schedules_and_the_scheduler(api)
    await _maintenance(api)
    assert (await reader.request("GET", "/jobs"))[0] == 200
    denied = {s.name: line for s in granted.services for line in s.log().splitlines() if any(d in line for d in DENIED)}
    assert not denied, denied


async def _ok(api: Api, method: str, path: str, **kwargs: Any) -> Any:
    status, body = await api.request(method, path, **kwargs)
    assert status in (200, 201, 202, 204), (method, path, status, body)
    return body


async def _jobs_and_dead_letters(api: Api) -> None:
    first = await _ok(api, "POST", "/jobs", json={"kind": "noop"}, headers={"Idempotency-Key": "once"})
    assert (await _ok(api, "POST", "/jobs", json={"kind": "noop"}, headers={"Idempotency-Key": "once"}))["id"] == first[
        "id"
    ]
    assert (await api.job(first["id"], wait=10))["state"] == "succeeded"
    await _ok(api, "POST", "/jobs/batch", json={"jobs": [{"kind": "noop"}, {"kind": "noop", "priority": 5}]})
    flow = await _ok(api, "POST", "/jobs/batch", json={"jobs": [{"kind": "noop"}], "then": {"kind": "noop"}})
    assert (await wait_state(api, flow["then"]["id"]))["state"] == "succeeded"  # released by the worker's role
    await _ok(api, "GET", f"/jobs/{flow['then']['id']}/dependencies")
    await _ok(api, "POST", f"/jobs/{flow['then']['id']}/cancel", params={"tree": "true"})
    await _ok(api, "POST", f"/jobs/{first['id']}/retry")
    assert (await wait_state(api, first["id"]))["state"] == "succeeded"
    await _ok(api, "GET", f"/jobs/{first['id']}/attempts")
    failed = await api.submit(kind="fail", payload={"mode": "permanent"})
    assert (await wait_state(api, failed["id"]))["state"] == "failed"
    await _ok(api, "GET", "/dead-letters")
    await _ok(api, "POST", f"/dead-letters/job-{failed['id']}/requeue")
    assert (await wait_state(api, failed["id"], timeout_s=20))["attempt"] == 2
    await _ok(api, "POST", f"/dead-letters/job-{failed['id']}/resolve", json={"note": "seen"})
    await _ok(api, "DELETE", f"/dead-letters/job-{failed['id']}")
    running = await api.submit(kind="sleep", payload={"seconds": 30})
    await wait_state(api, running["id"], ("running",))
    await _ok(api, "POST", f"/jobs/{running['id']}/cancel")
    assert (await wait_state(api, running["id"]))["state"] == "cancelled"


async def _sites_and_results(api: Api) -> None:
    policy = {"requests_per_hour": 100_000, "burst": 10, "pause_min_s": 0, "pause_max_s": 0.01, "max_concurrency": 1}
    await _ok(api, "PUT", "/sites/shop", json=policy)
    async with PageServer(pages) as server:
        urls = [f"{server.url}/ok/{n}" for n in range(3)] + [f"{server.url}/static"]
        job = await api.submit(kind="scrape.pages", site="shop", payload={"urls": urls})
        assert (await wait_state(api, job["id"]))["state"] == "succeeded"
        again = await api.submit(kind="http.fetch", site="shop", payload={"url": f"{server.url}/static"})
        assert (await wait_state(api, again["id"]))["state"] == "succeeded"
    assert len((await _ok(api, "GET", f"/jobs/{job['id']}/results"))["results"]) == 4
    await _ok(api, "GET", "/sites/shop")
    await _ok(api, "GET", "/sites")


async def _queues_workers_and_stats(api: Api) -> None:
    await _ok(api, "POST", "/queues/default/pause", json={"reason": "roles test"})
    await _ok(api, "POST", "/queues/default/resume")
    assert (await _ok(api, "GET", "/queues"))["queues"]
    assert (await _ok(api, "GET", "/workers"))["alive"] == 1
    await _ok(api, "GET", "/stats", params={"window_s": 3600})
    await _ok(api, "GET", "/reports", params={"hours": 1})
    waiting = await api.submit(kind="noop", delay_s=3600)
    await _ok(api, "PATCH", f"/jobs/{waiting['id']}", json={"priority": "high", "delay_s": 0})
    assert (await wait_state(api, waiting["id"]))["state"] == "succeeded"
    await _ok(api, "GET", "/jobs", params={"state": "succeeded", "page_size": 2})


async def _schedules_and_the_scheduler(api: Api) -> None:
    schedule = await _ok(api, "POST", "/schedules", json={"name": "tick", "interval_s": 1, "job": {"kind": "noop"}})

    async def fired_and_ran() -> bool:
        jobs = await _ok(api, "GET", "/jobs", params={"schedule_id": schedule["id"], "state": "succeeded"})
        return bool(jobs["jobs"])

    await eventually(fired_and_ran, timeout_s=20, what="the scheduler to fire the schedule and the job to run")
    path = f"/schedules/{schedule['id']}"
    await _ok(api, "PATCH", path, json={"interval_s": 60})
    for action in ("pause", "resume", "trigger"):
        await _ok(api, "POST", f"{path}/{action}")
    await _ok(api, "GET", f"{path}/preview", params={"count": 3})
    await _ok(api, "GET", path)
    await _ok(api, "DELETE", path)
    for action in ("pause", "resume", "run"):
        await _ok(api, "POST", f"/scheduler/{action}")
    await _ok(api, "GET", "/scheduler")
    await _ok(api, "GET", "/scheduler/config")
    await _ok(api, "GET", "/schedules/maintenance.report")


async def _maintenance(api: Api) -> None:
    kinds = {
        "maintenance.prune": {"retention_days": 1},
        "maintenance.prune_results": {"retention_days": 1},
        "maintenance.requeue_failed": {"min_age_s": 1},
        "maintenance.report": {"hours": 1},
    }
    for kind, payload in kinds.items():
        job = await api.submit(kind=kind, payload=payload)
        finished = await wait_state(api, job["id"])
        assert finished["state"] == "succeeded", finished


async def test_the_worker_role_may_not_read_or_write_api_keys_nor_anything_else_not_granted(
    roles: Roles, granted: Stack
) -> None:
    for service in SERVICES:
        connection = await asyncpg.connect(roles.dsn(service))
        try:
            for table in ("api_keys", "schedules"):
                if table in GRANTS[service]:
                    await connection.fetchval(f"SELECT count(*) FROM {table}")
                    continue
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match=f"permission denied for table {table}"):
                    await connection.fetchval(f"SELECT count(*) FROM {table}")
            # every service reads the schema's version (its readiness gate); only the owner writes the ledger
            assert await connection.fetchval("SELECT max(version) FROM schema_migrations") is not None
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for table schema_migr"):
                await connection.execute("DELETE FROM schema_migrations")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema public"):
                await connection.execute("CREATE TABLE stolen (x int)")
        finally:
            await connection.close()
    assert "api_keys" not in GRANTS["worker"]


async def test_granting_again_takes_back_what_was_granted_by_hand(roles: Roles, granted: Stack) -> None:
    owner = await asyncpg.connect(roles.dsn("owner"))
    try:
        await owner.execute(f'GRANT SELECT ON api_keys TO "{roles.role("worker")}"')
        await granted.run_cli("migrate", *roles.grant_args())
        tables = {r["table_name"] for r in await owner.fetch(SCHEMA_TABLES)}
    finally:
        await owner.close()
    worker = await asyncpg.connect(roles.dsn("worker"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await worker.fetchval("SELECT count(*) FROM api_keys")
    finally:
        await worker.close()
    listed = {table for service in SERVICES for table in GRANTS[service]} | OWNER_ONLY
    assert tables == listed, "every table of the migrated schema is granted to a service or kept for the owner"


async def test_granting_refuses_a_missing_role_a_superuser_and_the_owner_itself(roles: Roles, granted: Stack) -> None:
    for role, reason in (
        ("no_such_role_x", "does not exist"),
        ("postgres", "superuser"),
        (roles.role("owner"), "itself"),
    ):
        out = await granted.run_cli("migrate", f"--grant=worker={role}", check=False)
        assert reason in out, out
