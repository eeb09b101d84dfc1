"""The README's "Workflows" blocks, run as written: the shell block against a live stack, the Python block alone."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_readme_python import README, expected_output
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Stack


def blocks(language: str) -> list[str]:
    section = README.read_text().split("\n## Workflows\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


async def run(command: list[str], env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(*command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_workflows_shell_block_runs_against_a_live_stack(stack: Stack) -> None:
    gateway = await stack.start("gateway")
    await stack.start("worker")
    (block,) = blocks("sh")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    api = {"GLEANER_API_URL": f"{gateway.url}/api/v1", "GLEANER_API_TOKEN": ADMIN_TOKEN}
    prelude = 'curl() { command curl --fail-with-body "$@"; }\n'  # a refused request fails the block
    out = await run(["bash", "-e", "-o", "pipefail", "-c", prelude + block], {**os.environ, **api, "PATH": path})
    assert '"state":"blocked"' in out
    assert re.search(r"^state\s+cancelled$", out, flags=re.MULTILINE), out  # `gleaner jobs show`: cancelled


async def test_the_workflows_python_block_prints_what_it_says(tmp_path: Path) -> None:
    (block,) = blocks("python")
    script = tmp_path / "example.py"
    script.write_text(block)
    out = await run([sys.executable, str(script)], dict(os.environ))
    assert out.splitlines() == expected_output(block)
