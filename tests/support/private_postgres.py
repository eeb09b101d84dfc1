"""A private PostgreSQL cluster for fault tests: initdb + pg_ctl in a temporary directory, on its own port.

Crashing it (`crash`: an immediate stop) and starting it again on the same data directory only ever touch
this cluster's data directory; the machine's cluster is never addressed. As root the binaries run as the
`postgres` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from gleaner.shared.migrate import migrate
from tests.support.stack import free_port

POSTGRES_LIB = Path("/usr/lib/postgresql")
MACHINE_PORT = 5432
# fast and disposable: a crash test stops the server, not the machine, so nothing needs flushing to disk
# (the log line names the database, so a scenario counts its own deadlocks in the shared server log)
SERVER_OPTIONS = (
    "fsync=off",
    "full_page_writes=off",
    "max_connections=300",
    "listen_addresses=127.0.0.1",
    "log_line_prefix=%m-%p-db=%d:",
)


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(POSTGRES_LIB.glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name), reverse=True)
    return found[0].parent if found else None


def available() -> str | None:
    """None when a private cluster can be started here, else why not."""
    if bin_dir() is None:
        return f"no PostgreSQL server binaries under {POSTGRES_LIB}"
    if os.geteuid() == 0 and not _has_user("postgres"):
        return "running as root without a postgres user to run the server as"
    return None


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class PrivatePostgres:
    """One PostgreSQL cluster in a temporary directory: databases on demand, crash and restart, delete."""

    def __init__(self, root: Path | None = None) -> None:
        found = bin_dir()
        assert found is not None, available()
        self.bin = found
        self.root = root or Path(tempfile.mkdtemp(prefix="gleaner-postgres-"))
        self.data = self.root / "data"
        while (port := free_port()) == MACHINE_PORT:
            pass
        self.port = port

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def _pg_ctl(self, *args: str) -> list[str]:
        """A pg_ctl command line that can only reach this cluster's data directory."""
        return self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *args)

    def _start_command(self) -> list[str]:
        options = " ".join([f"-p {self.port}", f"-k {self.root}", *(f"-c {o}" for o in SERVER_OPTIONS)])
        return self._pg_ctl("-l", str(self.root / "server.log"), "-o", options, "start")

    def start(self) -> None:
        """initdb (trust, user postgres) and start the server."""
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres")
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"]
        subprocess.run(self._as_owner(*initdb, "-E", "UTF8", "--locale", "C"), check=True, capture_output=True)
        subprocess.run(self._start_command(), check=True, capture_output=True)

    async def _run(self, command: list[str]) -> None:
        process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {err.decode() or out.decode()}")

    # -- faults: each goes through _pg_ctl, bound to this cluster's data directory --

    async def crash(self) -> None:
        """Immediate stop: every backend dies at once, nothing is checkpointed (recovery replays the WAL)."""
        await self._run(self._pg_ctl("-m", "immediate", "stop"))

    async def restart_after_crash(self) -> None:
        await self._run(self._start_command())

    async def ensure_running(self) -> None:
        """Start the server again if a failed test left it stopped."""
        process = await asyncio.create_subprocess_exec(*self._pg_ctl("status"), stdout=subprocess.DEVNULL)
        if await process.wait() != 0:
            await self.restart_after_crash()

    async def create_database(self, name: str) -> str:
        """Create and migrate a database; its DSN."""
        admin = await asyncpg.connect(self.dsn())
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await migrate(self.dsn(name))
        return self.dsn(name)

    async def drop_database(self, name: str) -> None:
        admin = await asyncpg.connect(self.dsn())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    def log_count(self, database: str, text: str) -> int:
        """Lines of the server log about `database` that contain `text`."""
        tag = f"db={database}:"
        with (self.root / "server.log").open(errors="replace") as log:
            return sum(1 for line in log if tag in line and text in line)

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(self._pg_ctl("-m", "fast", "stop"), check=True, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private cluster, stopped and deleted afterwards."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
