"""`make run`'s stack script (scripts/run-stack.sh) as a test runs it: on private ports, in a test's database and
namespace, its output collected."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.stack import eventually, free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "run-stack.sh"


class RunStack:
    """The script as a process; `lines` is everything it and its services printed so far."""

    def __init__(self, env: dict[str, str], command: tuple[str, ...] = ("bash", str(SCRIPT)), **extra: str) -> None:
        self.command = command
        self.ports = {name: free_port() for name in ("gateway", "worker", "scheduler")}
        self.env = {
            **{name: value for name, value in os.environ.items() if not name.startswith("GLEANER_")},
            **env,
            "VENV": str(Path(sys.executable).parents[1]),
            "RUN_GATEWAY_PORT": str(self.ports["gateway"]),
            "RUN_WORKER_PORT": str(self.ports["worker"]),
            "RUN_SCHEDULER_PORT": str(self.ports["scheduler"]),
            **extra,
        }
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    async def wait_for(self, text: str, timeout_s: float = 30) -> None:
        async def seen() -> bool:
            assert self.process is not None
            if self.process.returncode is not None and text not in self.output:
                raise AssertionError(f"the stack exited {self.process.returncode}:\n{self.output[-3000:]}")
            return text in self.output

        await eventually(seen, timeout_s=timeout_s, interval_s=0.1, what=repr(text))

    async def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, as Ctrl-C or the end of `make` would; the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)
        return code
