"""The README's "Use from Python" blocks run as written against a live stack, printing what they say they print."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Stack

README = Path(__file__).resolve().parents[2] / "README.md"
OUTPUT = re.compile(r"#\s*→\s*(.+)$")


def python_blocks(heading: str) -> list[str]:
    """The ```python blocks of one README section."""
    text = README.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def expected_output(block: str) -> list[str]:
    """The lines a block prints, as its `# → ...` comments say, in order."""
    return [match.group(1).strip() for line in block.splitlines() if (match := OUTPUT.search(line))]


def test_the_section_has_a_sync_and_an_async_block_that_say_what_they_print() -> None:
    blocks = python_blocks("Use from Python")
    assert len(blocks) == 2 and "Client()" in blocks[0] and "AsyncClient()" in blocks[1]
    assert all(expected_output(block) for block in blocks)


@pytest.mark.parametrize("index", [0, 1])
async def test_a_use_from_python_block_runs_against_a_live_stack(stack: Stack, index: int, tmp_path: Path) -> None:
    gateway = await stack.start("gateway")
    await stack.start("worker")
    block = python_blocks("Use from Python")[index]
    script = tmp_path / "example.py"
    script.write_text(block)
    env = {**os.environ, "GLEANER_API_URL": f"{gateway.url}/api/v1", "GLEANER_API_TOKEN": ADMIN_TOKEN}

    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines() == expected_output(block)
