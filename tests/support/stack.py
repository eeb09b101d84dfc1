"""Run the real services as subprocesses and talk to them over HTTP, as a user would."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.support.contract import checked_session, gateway_started
from tests.support.services import ADMIN_TOKEN

T = TypeVar("T")
GLEANER = str(Path(sys.executable).with_name("gleaner"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One `gleaner <command>` process with its own port and log file."""

    def __init__(
        self,
        command: str,
        env: dict[str, str],
        log_dir: Path,
        name: str | None = None,
        args: Sequence[str] = (),
        cwd: Path | None = None,
    ) -> None:
        self.command = command
        self.args = tuple(args)
        self.cwd = cwd
        self.name = name or command
        self.port = free_port()
        self.env = {**os.environ, **env, "GLEANER_HTTP_PORT": str(self.port)}
        self.log_path = log_dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.command == "gateway":
            gateway_started(self.url)  # its answers under /api/v1 are checked against the document
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [GLEANER, self.command, *self.args], env=self.env, stdout=log, stderr=log, cwd=self.cwd
        )

    async def wait_ready(self, timeout_s: float = 20) -> None:
        async def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                async with checked_session() as session, session.get(f"{self.url}/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, timeout_s=timeout_s, what=f"{self.name} ready")

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout_s: float = 15) -> int | None:
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Stack:
    """A set of services sharing one environment; stops them all at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.services: list[Service] = []

    async def start(
        self, command: str, name: str | None = None, *, args: Sequence[str] = (), cwd: Path | None = None, **env: str
    ) -> Service:
        """Start `gleaner <command> <args>` (in `cwd`, default the tests' own) and wait until it is ready."""
        name = name or f"{command}{len(self.services)}"
        service = Service(command, {**self.env, **env}, self.log_dir, name, args, cwd)
        service.start()
        self.services.append(service)
        await service.wait_ready()
        return service

    async def run_cli(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
        """Run `gleaner <args>` with the stack's environment; its stdout (stderr appended on failure)."""
        process = await asyncio.create_subprocess_exec(
            GLEANER,
            *args,
            env={**os.environ, **self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await process.communicate()
        if check and process.returncode != 0:
            raise AssertionError(f"gleaner {' '.join(args)} exited {process.returncode}: {err.decode()}")
        return out.decode() + ("" if process.returncode == 0 else err.decode())

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()


class Api:
    """A thin JSON client for the gateway with the admin token (or another); every answer is checked against the
    OpenAPI document (`tests/support/contract.py`)."""

    def __init__(self, base_url: str, token: str | None = ADMIN_TOKEN) -> None:
        self.base_url = base_url.rstrip("/") + "/api/v1"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.session = checked_session(headers=headers)

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.base_url + path, **kwargs) as response:
            body = await response.read()
            ctype = response.headers.get("Content-Type", "")
            data = await response.json(content_type=None) if body and "json" in ctype else body.decode()
            return response.status, data

    async def submit(self, **job: Any) -> dict[str, Any]:
        status, body = await self.request("POST", "/jobs", json=job)
        assert status in (200, 202), (status, body)
        return dict(body)

    async def job(self, job_id: int, **params: Any) -> dict[str, Any]:
        status, body = await self.request("GET", f"/jobs/{job_id}", params=params)
        assert status == 200, (status, body)
        return dict(body)

    async def close(self) -> None:
        await self.session.close()


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout_s: float = 10, interval_s: float = 0.05, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")
