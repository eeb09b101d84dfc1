"""Settings that must stop a service before it serves: a misspelled variable, the sample admin token in public."""

from __future__ import annotations

import asyncio
import os
import subprocess

from gleaner.services.gateway.boundary import SAMPLE_ADMIN_TOKEN
from tests.support.stack import GLEANER, Stack, free_port


async def run_service(
    command: str, env: dict[str, str], timeout_s: str = "20", **overrides: str
) -> tuple[int | None, str]:
    """Start `gleaner <command>` and wait `timeout_s` for it to exit: (exit code or None if it kept running, stderr)."""
    process = await asyncio.create_subprocess_exec(
        GLEANER,
        command,
        env={**os.environ, **env, "GLEANER_HTTP_PORT": str(free_port()), **overrides},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), float(timeout_s))
    except TimeoutError:
        process.kill()
        await process.wait()
        return None, ""
    return process.returncode, err.decode()


async def test_the_gateway_refuses_the_sample_admin_token_on_a_public_address(env: dict[str, str]) -> None:
    code, err = await run_service("gateway", env, GLEANER_HTTP_HOST="0.0.0.0", GLEANER_ADMIN_TOKEN=SAMPLE_ADMIN_TOKEN)
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert "GLEANER_ADMIN_TOKEN" in line and "0.0.0.0" in line


async def test_the_sample_admin_token_still_serves_on_loopback(stack: Stack) -> None:
    await stack.start("gateway", GLEANER_ADMIN_TOKEN=SAMPLE_ADMIN_TOKEN, GLEANER_HTTP_HOST="127.0.0.1")


async def test_a_misspelled_setting_stops_the_worker_naming_the_setting_it_resembles(env: dict[str, str]) -> None:
    """Issue 11: GLEANER_WORKER_CONCURENCY=4 was ignored and the worker ran 32 slots."""
    code, err = await run_service("worker", env, GLEANER_WORKER_CONCURENCY="4")
    assert code == 2, err
    assert "GLEANER_WORKER_CONCURENCY: not a Gleaner setting; did you mean GLEANER_WORKER_CONCURRENCY?" in err
