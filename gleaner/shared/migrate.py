"""Forward-only migrations: numbered SQL files applied in order under an advisory lock, with checksums."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from gleaner.shared.errors import MigrationError

log = logging.getLogger(__name__)

LOCK_KEY = 0x676C65616E6572  # "gleaner"
FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
SELECT_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The migration files shipped in `gleaner/shared/migrations`, in order."""
    found: list[Migration] = []
    for entry in resources.files("gleaner.shared.migrations").iterdir():
        match = FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers: {versions}")
    return found


def pending(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> list[Migration]:
    """Migrations not applied yet; raises if an applied file was changed or removed."""
    known = {m.version: m for m in migrations}
    for version, (name, checksum) in applied.items():
        if version not in known:
            raise MigrationError(f"migration {name} is applied but its file is missing")
        if known[version].checksum != checksum:
            raise MigrationError(f"migration {name} was changed after it was applied")
    return [m for m in migrations if m.version not in applied]


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; returns the names applied. Safe to run from many processes at once."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await connection.execute(CREATE_TABLE)
            rows = await connection.fetch(SELECT_APPLIED)
            todo = pending(load_migrations(), {r["version"]: (r["name"], r["checksum"]) for r in rows})
            for migration in todo:
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(INSERT_APPLIED, migration.version, migration.name, migration.checksum)
                log.info("applied migration %s", migration.name)
            return [m.name for m in todo]
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await connection.close()
