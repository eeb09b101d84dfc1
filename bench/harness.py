"""A fresh database, namespace and set of service processes for one benchmark case."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

import asyncpg

from gleaner.shared.config import Config
from tests.support.services import create_database, delete_topology, drop_database, dsn_for, test_env, unique
from tests.support.stack import Api, Service, Stack

# the production defaults of the background duties (the test environment speeds them up), a fast delay unit
BENCH_ENV = {
    # GLEANER_LOG_LEVEL=INFO measures the per-job start and end lines too (the services' default level)
    "GLEANER_LOG_LEVEL": os.environ.get("GLEANER_LOG_LEVEL", "WARNING"),
    "GLEANER_LEASE_S": "30",
    "GLEANER_RELAY_GRACE_S": "30",
    "GLEANER_RELAY_INTERVAL_S": "1",
    "GLEANER_REAPER_INTERVAL_S": "2",
    "GLEANER_DELAY_UNIT_MS": "100",
    "GLEANER_DELAY_LEVELS": "12",
}


class Harness:
    """`async with Harness(...) as h:` gives h.db, h.start(...), h.api(...); tears everything down after."""

    def __init__(self, name: str, template: str = "", **env: str) -> None:
        self.name = name
        self.template = template
        self.extra_env = env
        self.database = ""
        self.env: dict[str, str] = {}
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"gleaner-bench-{name}-"))
        self.stack: Stack | None = None
        self.db: asyncpg.Pool | None = None
        self.apis: list[Api] = []

    async def __aenter__(self) -> Harness:
        # a template holding a loaded history is copied, then migrated to this code
        self.database = await create_database(self.template)
        self.env = test_env(dsn_for(self.database), unique("b"), **{**BENCH_ENV, **self.extra_env})
        self.stack = Stack(self.env, self.log_dir)
        self.db = await asyncpg.create_pool(dsn_for(self.database), min_size=1, max_size=4)
        return self

    async def start(self, command: str, **env: str) -> Service:
        assert self.stack is not None
        return await self.stack.start(command, **env)

    def api(self, service: Service) -> Api:
        client = Api(service.url)
        self.apis.append(client)
        return client

    @property
    def config(self) -> Config:
        return Config.from_env(self.env)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for client in self.apis:
            await client.close()
        if self.stack is not None:
            self.stack.stop_all()
        if self.db is not None:
            await self.db.close()
        await delete_topology(self.config)
        await drop_database(self.database)


def rss_mb(service: Service) -> float:
    """Resident memory of a service, from /proc. A service of several processes (GLEANER_GATEWAY_PROCESSES): the sum
    of their proportional set sizes, so the pages a fork shares count once, not once per process."""
    assert service.process is not None
    pids = process_tree(service.process.pid)
    field, name = ("VmRSS:", "status") if len(pids) == 1 else ("Pss:", "smaps_rollup")
    kib = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                kib += int(line.split()[1])
    return round(kib / 1024, 1) if kib else float("nan")


def cpu_s(service: Service) -> float:
    """CPU time (user + system) a service has used, from /proc: a per-job cost that a busy, shared machine
    distorts far less than a rate does. A service of several processes counts them all."""
    assert service.process is not None
    return sum(process_cpu_s(pid) for pid in process_tree(service.process.pid))


def process_tree(pid: int) -> list[int]:
    """A process and its children (a service's supervisor and the processes it forked)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(child) for child in children.read_text().split())] if children.exists() else [pid]


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system) of a process of this machine, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
