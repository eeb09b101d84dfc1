"""The README's worker commands of "Write a handler", run verbatim from the repository root: each loads the
job-board example (from the current directory, as Celery's -A does) and registers its kind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.test_readme_python import README
from tests.support.contract import checked_session
from tests.support.stack import Api, Stack, eventually, free_port

REPO = README.parent


def command_lines(heading: str) -> list[str]:
    section = README.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_section_shows_both_ways_to_load_the_example() -> None:
    assert command_lines("Write a handler") == [
        "gleaner worker --handlers examples.jobboard.scraper",
        "GLEANER_HANDLER_MODULES=examples.jobboard.scraper gleaner worker",
    ]


@pytest.mark.parametrize("index", [0, 1])
async def test_a_readme_worker_command_serves_the_example_kind(stack: Stack, gateway_api: Api, index: int) -> None:
    line = command_lines("Write a handler")[index]
    port = free_port()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, **stack.env, "GLEANER_HTTP_PORT": str(port), "PATH": path}
    env.pop("GLEANER_HANDLER_MODULES", None)
    worker = await asyncio.create_subprocess_exec("bash", "-c", line, cwd=REPO, env=env, start_new_session=True)

    async def ready() -> bool:
        assert worker.returncode is None, f"`{line}` exited with {worker.returncode}"
        try:
            async with checked_session() as session, session.get(f"http://127.0.0.1:{port}/readyz") as response:
                return response.status == 200
        except OSError:
            return False

    try:
        await eventually(ready, timeout_s=30, what=f"`{line}` ready")
        status, kind = await gateway_api.request("GET", "/kinds/jobboard.scrape")
        assert (status, kind["workers_alive"]) == (200, 1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 20)
