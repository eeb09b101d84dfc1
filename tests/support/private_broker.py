"""A private RabbitMQ node for fault tests: its own name, ports, data and cookie, so faults never reach the machine's.

Every `rabbitmqctl` call goes through `PrivateRabbit._command`, which always names this node (`-n`); the
machine's node (`rabbit@localhost`, 5672/25672) is never addressed. The node runs as the calling user from
the binaries under /usr/lib/rabbitmq/bin (the /usr/sbin wrappers switch to the rabbitmq user, which cannot
write a temporary directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.stack import free_port

RABBITMQ_BIN = Path(os.environ.get("GLEANER_TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
MACHINE_PORTS = frozenset({5672, 25672, 15672, 4369})
START_TIMEOUT_S = 90
CTL_TIMEOUT_S = 60


def available() -> str | None:
    """None when a private node can be started here, else why not."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        return f"no rabbitmq-server under {RABBITMQ_BIN}"
    return None


def _private_port() -> int:
    while (port := free_port()) in MACHINE_PORTS:
        pass
    return port


@dataclass(frozen=True, slots=True)
class QueueDepth:
    ready: int
    unacked: int


class PrivateRabbit:
    """One RabbitMQ node in a temporary directory: start, inject faults, read queue depths, stop and delete."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="gleaner-rabbit-"))
        self.node = f"gleanertest{secrets.token_hex(4)}@localhost"
        self.port = _private_port()
        self.dist_port = _private_port()

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        # HOME holds this node's own Erlang cookie; the CLI's distribution ports get a wider range than the
        # default eleven, since other rabbitmqctl calls on the machine share them
        return {
            **os.environ,
            "HOME": str(self.root),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.root / "pid"),
            "RABBITMQ_CTL_DIST_PORT_MIN": "35672",
            "RABBITMQ_CTL_DIST_PORT_MAX": "35772",
        }

    def _command(self, *args: str) -> list[str]:
        """A rabbitmqctl command line that can only reach this node."""
        return [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, "-q", *args]

    def start(self) -> None:
        """Write the config, start the node detached and wait until its applications run."""
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (self.root / "enabled_plugins").write_text("[].\n")
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"], env=self._env(), check=True, capture_output=True
        )
        self._ctl_sync("wait", str(self.root / "pid"), "--timeout", str(START_TIMEOUT_S))

    def _ctl_sync(self, *args: str) -> str:
        done = subprocess.run(
            self._command(*args), env=self._env(), capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node}: {done.stderr or done.stdout}")
        return done.stdout

    async def ctl(self, *args: str) -> str:
        """Run rabbitmqctl against this node without blocking the event loop; its stdout."""
        process = await asyncio.create_subprocess_exec(
            *self._command(*args), env=self._env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        async with asyncio.timeout(CTL_TIMEOUT_S):
            out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node}: {err.decode() or out.decode()}")
        return out.decode()

    # -- faults: each names this node through _command --

    async def app_down(self) -> None:
        """Stop the RabbitMQ application (the Erlang node stays up): every client loses its connection."""
        await self.ctl("stop_app")

    async def app_up(self) -> None:
        await self.ctl("start_app")

    async def drop_connections(self, reason: str = "fault test: connections dropped") -> None:
        """Close every client connection from the broker's side; the broker keeps running."""
        await self.ctl("close_all_connections", reason)

    async def drop_connection_named(self, name: str, reason: str = "fault test: connection dropped") -> int:
        """Close the client connections whose properties mention `name`; how many were closed."""
        listing = await self.ctl("list_connections", "--no-table-headers", "pid", "client_properties")
        pids = [line.split("\t", 1)[0] for line in listing.splitlines() if name in line]
        for pid in pids:
            await self.ctl("close_connection", pid, reason)
        return len(pids)

    async def ensure_running(self) -> None:
        """Start the application again if a failed test left it stopped."""
        status = await self.ctl("eval", "rabbit:is_running().")
        if status.strip() != "true":
            await self.app_up()

    async def queue_depths(self) -> dict[str, QueueDepth]:
        """Ready and unacknowledged messages of every queue of the default vhost."""
        listing = await self.ctl(
            "list_queues", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"
        )
        depths: dict[str, QueueDepth] = {}
        for line in listing.splitlines():
            name, ready, unacked = line.rsplit("\t", 2)
            depths[name] = QueueDepth(int(ready), int(unacked))
        return depths

    def stop(self) -> None:
        """Stop the node (by its own pid if the CLI cannot) and delete its directory."""
        try:
            self._ctl_sync("stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            self._kill_own_pid()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_own_pid(self) -> None:
        pid_file = self.root / "pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


@contextlib.contextmanager
def private_rabbit() -> Iterator[PrivateRabbit]:
    """A started private node, stopped and deleted afterwards."""
    node = PrivateRabbit()
    try:
        node.start()
        yield node
    finally:
        node.stop()
