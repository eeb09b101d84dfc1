"""A handler package from outside the repository, installed with pip, served by a worker; the gateway knows its kind
only from the kinds registry (it is started without any handler module)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_lifecycle import wait_state
from tests.support.stack import Api, Stack

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "acme-counting"
version = "0.1.0"
dependencies = ["gleaner"]

[tool.setuptools]
packages = ["acme_counting"]
"""
MODULE = '''\
"""A plugin: it imports only gleaner."""

from gleaner import JobContext, JsonInput, Registry

registry = Registry()
SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 100}}}


@registry.handler("acme.count", description="Counts from 1 to n.", schema=SCHEMA)
async def count(ctx: JobContext) -> JsonInput:
    n = ctx.job.payload["n"]
    assert isinstance(n, int)
    await ctx.progress({"n": n})
    return {"counted": list(range(1, n + 1))}


@registry.handler("acme.purge", privileged=True)
async def purge(ctx: JobContext) -> JsonInput:
    """Deletes what others made: admin only."""
    return None
'''


async def install_plugin(tmp_path: Path) -> Path:
    """pip-install the package (no dependencies, no build isolation: seconds, offline) into a directory of its own."""
    source = tmp_path / "acme-counting"
    (source / "acme_counting").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "acme_counting" / "__init__.py").write_text(MODULE)
    target = tmp_path / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    process = await asyncio.create_subprocess_exec(
        *command, "--target", str(target), str(source), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    assert (target / "acme_counting" / "__init__.py").exists()
    return target


async def submit(api: Api, payload: dict[str, object]) -> tuple[int, dict[str, object]]:
    status, body = await api.request("POST", "/jobs", json={"kind": "acme.count", "payload": payload})
    return status, body


def error_fields(body: dict[str, object]) -> list[object]:
    errors = body.get("errors")
    assert isinstance(errors, list)
    return [error["field"] for error in errors]


async def a_privileged_plugin_kind_needs_admin(stack: Stack, gateway_api: Api) -> None:
    created = await stack.run_cli("apikey", "create", "--name", "writer", "--scopes", "jobs:read,jobs:write")
    writer = Api(gateway_api.base_url.removesuffix("/api/v1"), token=created.strip().splitlines()[-1].split()[-1])
    try:
        status, _ = await writer.request("POST", "/jobs", json={"kind": "acme.purge"})
        batch = {"jobs": [{"kind": "acme.count", "payload": {"n": 1}}, {"kind": "acme.purge"}]}
        batch_status, problem = await writer.request("POST", "/jobs/batch", json=batch)
        assert (status, batch_status, error_fields(problem)) == (403, 403, ["jobs[1].kind"])
        status, _ = await writer.request("POST", "/jobs", json={"kind": "acme.count", "payload": {"n": 1}})
        assert status == 202
    finally:
        await writer.close()


async def test_a_pip_installed_plugin_kind_is_registered_checked_and_run(
    stack: Stack, gateway_api: Api, tmp_path: Path
) -> None:
    assert "GLEANER_HANDLER_MODULES" not in stack.env
    site = await install_plugin(tmp_path)
    status, body = await submit(gateway_api, {"n": 3})
    assert status == 422 and "unknown kind 'acme.count'" in str(body) and "noop" in str(body)

    worker = await stack.start("worker", args=["--handlers", "acme_counting"], cwd=tmp_path, PYTHONPATH=str(site))

    status, kinds = await gateway_api.request("GET", "/kinds")
    acme = next(kind for kind in kinds["kinds"] if kind["name"] == "acme.count")
    assert (acme["workers_alive"], acme["description"]) == (1, "Counts from 1 to n.")
    assert acme["schema"]["required"] == ["n"] and acme["queues"] == ["default"]
    for bad in ({"n": 0}, {"n": "three"}, {}):
        status, body = await submit(gateway_api, bad)
        assert (status, error_fields(body)) == (422, ["payload.n"])
    status, job = await submit(gateway_api, {"n": 3})
    assert status == 202
    done = await wait_state(gateway_api, int(job["id"]))  # type: ignore[call-overload]
    assert (done["state"], done["result"]) == ("succeeded", {"counted": [1, 2, 3]})

    await a_privileged_plugin_kind_needs_admin(stack, gateway_api)

    worker.stop()
    status, acme = await gateway_api.request("GET", "/kinds/acme.count")
    assert (status, acme["workers_alive"]) == (200, 0)
    status, waiting = await submit(gateway_api, {"n": 1})
    assert status == 202 and waiting["state"] == "queued"
