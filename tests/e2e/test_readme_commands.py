"""Every README shell block runs, in order, as a user would: `make run` in one terminal on a database that does not
exist yet, then, in a new terminal (no Gleaner variable, no virtualenv on the PATH), the line `make run` printed and
each block top to bottom. A refused request fails the run (curl gets `--fail-with-body`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gleaner.shared.config import Config
from tests.readme_blocks import EXPORT_LINE, README, shell_blocks_to_run
from tests.support.run_stack import RunStack
from tests.support.services import AMQP_URL, PG_ADMIN, delete_topology, dsn_for, require_services, unique
from tests.support.stack import Api

REPO = README.parent
DEFAULT_TOKEN = "local-admin-token-change-me"  # the Makefile's, as `make run` uses it
PRELUDE = """set -e -o pipefail
curl() { command curl --fail-with-body "$@"; }
cd "$REPO"
"""


@pytest.fixture
async def fresh_stack_env() -> AsyncIterator[dict[str, str]]:
    """A database that does not exist yet (`make run` creates it) and a namespace of its own."""
    require_services()
    name = unique("gleaner_t_readme_")
    env = {"GLEANER_DATABASE_URL": dsn_for(name), "GLEANER_NAMESPACE": unique("t"), "GLEANER_AMQP_URL": AMQP_URL}
    yield env
    await delete_topology(Config.from_env(env))
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def a_new_terminal() -> dict[str, str]:
    """The environment of another terminal: no GLEANER_* variable, no virtualenv on the PATH."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GLEANER_")}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep) if ".venv" not in part)
    env.pop("VIRTUAL_ENV", None)
    return env


def script(printed_line: str) -> str:
    """The README's blocks to run, in order, with the line `make run` printed in place of the README's copy."""
    parts = [PRELUDE]
    for index, block in enumerate(shell_blocks_to_run()):
        section = block.section.replace("'", "")
        parts.append(f"echo '::: block {index} ({section})'")
        parts.append(EXPORT_LINE.sub(lambda _match: printed_line, block.body))
    return "\n".join(parts)


async def test_every_readme_command_block_runs_in_order_against_a_fresh_make_run(
    fresh_stack_env: dict[str, str], tmp_path: Path
) -> None:
    stack = RunStack(fresh_stack_env, command=("make", "run"))
    await stack.start()
    try:
        await stack.wait_for("Gleaner is running", timeout_s=120)
        gateway = f"http://127.0.0.1:{stack.ports['gateway']}"
        where = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in stack.lines if line.startswith("  ")}
        assert where["API"].startswith(f"{gateway}/api/v1")
        assert where["console"].startswith(f"{gateway}/console/ ")
        assert where["RabbitMQ"].startswith("http://127.0.0.1:15672/")
        assert where["metrics"].startswith(f"{gateway}/metrics (gateway), :{stack.ports['worker']}/metrics (worker)")
        assert where["token"].startswith(DEFAULT_TOKEN)
        (printed,) = [line.strip() for line in stack.lines if line.strip().startswith("export PATH=")]
        readme_line = EXPORT_LINE.search(shell_blocks_to_run()[0].body)
        assert readme_line is not None
        as_printed_here = (
            readme_line.group(0)
            .replace("$PWD", str(REPO))
            .replace("127.0.0.1:8080", f"127.0.0.1:{stack.ports['gateway']}")
            .replace("postgresql://postgres@127.0.0.1:5432/gleaner", fresh_stack_env["GLEANER_DATABASE_URL"])
        )
        assert printed == as_printed_here, "the README shows the line `make run` prints"

        path = tmp_path / "readme.sh"
        path.write_text(script(printed))
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(path),
            env={**a_new_terminal(), "REPO": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 600)
        output = out.decode(errors="replace")
        assert process.returncode == 0, output[-6000:]
        assert output.count("::: block ") == len(shell_blocks_to_run())

        api = Api(stack.gateway_url, token=DEFAULT_TOKEN)
        try:
            status, schedules = await api.request("GET", "/schedules")
            assert status == 200
            by_name = {schedule["name"]: schedule for schedule in schedules["schedules"]}
            assert by_name["nightly"]["interval_s"] == 600  # the PATCH changed the schedule it created
            assert by_name["maintenance.requeue_failed"]["enabled"] is False  # and no built-in one
            status, scheduler = await api.request("GET", "/scheduler")
            assert (status, scheduler["paused"]) == (200, False)
        finally:
            await api.close()
    finally:
        await stack.stop(timeout_s=60)
