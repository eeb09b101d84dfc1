"""Migrations are numbered files applied once; a changed or missing applied file stops the run."""

from __future__ import annotations

import pytest

from gleaner.shared.errors import MigrationError
from gleaner.shared.migrate import Migration, load_migrations, pending


def test_the_shipped_migrations_are_numbered_in_order() -> None:
    migrations = load_migrations()
    assert migrations[0].version == 1
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)


def test_only_unapplied_migrations_are_pending() -> None:
    first, second = Migration(1, "0001_a.sql", "SELECT 1"), Migration(2, "0002_b.sql", "SELECT 2")
    assert pending([first, second], {1: (first.name, first.checksum)}) == [second]


def test_an_edited_applied_migration_is_refused() -> None:
    first = Migration(1, "0001_a.sql", "SELECT 1")
    with pytest.raises(MigrationError, match="changed"):
        pending([first], {1: (first.name, "different")})


def test_a_missing_applied_migration_is_refused() -> None:
    with pytest.raises(MigrationError, match="missing"):
        pending([], {1: ("0001_a.sql", "x")})
