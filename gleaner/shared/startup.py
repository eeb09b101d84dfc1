"""The mistakes of a first start, each as one line with its fix (`gleaner` exits 2 on a StartupError), and the
schema gate that keeps /readyz at 503 until the database is at the migration version this code expects."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from dataclasses import dataclass

import asyncpg
from yarl import URL

from gleaner.shared.errors import StartupError
from gleaner.shared.migrate import load_migrations

log = logging.getLogger(__name__)

SCHEMA_RECHECK_S = 2.0
CURRENT_VERSION = "SELECT max(version) FROM schema_migrations"


def shown_url(url: str) -> str:
    """A connection URL as it may be printed: without its password."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


def database_error(exc: BaseException, database_url: str) -> StartupError | None:
    """The one-line explanation of a failed PostgreSQL connection, or None for something else."""
    where = f"(GLEANER_DATABASE_URL={shown_url(database_url)})"
    name = URL(database_url).path.lstrip("/") or "(none)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        fix = f"create and migrate it with `make migrate`, or `createdb {name}` then `gleaner migrate`"
        return StartupError(f'database "{name}" does not exist {where}: {fix}')
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return StartupError(f"PostgreSQL refused the login {where}: {exc}; check the user and password in the URL")
    if isinstance(exc, OSError | asyncpg.CannotConnectNowError):
        return StartupError(f"cannot reach PostgreSQL {where}: {exc}; start it (`make services`) or fix the URL")
    return None


def expected_version() -> int:
    """The newest migration this code ships: the schema version its statements need."""
    return max(migration.version for migration in load_migrations())


@dataclass(slots=True)
class SchemaGate:
    """Whether the database schema is at (or past) `expected`; /readyz is 503 while it is behind."""

    expected: int
    found: int | None = None

    @property
    def ready(self) -> bool:
        return self.found is not None and self.found >= self.expected

    async def check(self, pool: asyncpg.Pool) -> None:
        """Read the schema's version; a database never migrated is a StartupError (nothing here can work)."""
        try:
            self.found = await pool.fetchval(CURRENT_VERSION)
        except asyncpg.UndefinedTableError:
            self.found = None
        if self.found is None:
            raise StartupError(
                "the database is not migrated (no Gleaner schema): run `gleaner migrate` (or `make migrate`) first"
            )
        if not self.ready:
            log.warning(
                "the database schema is at migration %d, this code needs %d: not ready until `gleaner migrate` runs",
                self.found,
                self.expected,
            )

    async def wait_until_ready(self, pool: asyncpg.Pool) -> None:
        """While behind (a rolling upgrade whose migration has not run yet), read the version again every few
        seconds; /readyz turns 200 once it is there."""
        while not self.ready:
            await asyncio.sleep(SCHEMA_RECHECK_S)
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self.found = await pool.fetchval(CURRENT_VERSION)
        log.info("the database schema is at migration %s: ready", self.found)


def bound_socket(host: str, port: int) -> socket.socket:
    """The service's listening socket, bound before anything else starts, so "listening on" is true when logged
    and a port in use (a second `make run`) is a one-line error, not a traceback after connecting everything."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is in use: is another `make run` (or this service) running? "
                "Stop it, or set GLEANER_HTTP_PORT"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port} (GLEANER_HTTP_HOST, GLEANER_HTTP_PORT): {exc}") from None
