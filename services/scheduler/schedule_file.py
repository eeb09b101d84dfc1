"""`gleaner schedules apply FILE.yaml`: make the file-managed schedules match a declarative file (GitOps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from services.scheduler import schedule_store
from services.scheduler.definitions import Definition, TemplateCheck, parse
from shared.errors import GleanerError, ValidationProblem

SOURCE = "file"


class FileError(GleanerError):
    """The schedules file cannot be read or is invalid; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the plan: `create`, `update` (with the fields that differ) or `disable`."""

    action: str
    name: str
    fields: tuple[str, ...] = ()
    definition: Definition | None = None

    def describe(self) -> str:
        suffix = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.action} {self.name}{suffix}"


@dataclass(slots=True)
class Plan:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def load(path: Path, check_template: TemplateCheck, now: datetime) -> list[Definition]:
    """Read and validate every schedule of the file; all problems are reported together."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FileError(f"cannot read {path}: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, Mapping) or not isinstance(document.get("schedules", []), list):
        raise FileError(f"{path}: expected a mapping with a `schedules` list")
    unknown = sorted(set(document) - {"schedules", "sites"})
    if unknown:
        raise FileError(f"{path}: unknown top-level keys {', '.join(unknown)}")
    return _parse_all(path, document.get("schedules", []), check_template, now)


def _parse_all(path: Path, entries: Sequence[Any], check: TemplateCheck, now: datetime) -> list[Definition]:
    definitions: list[Definition] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        try:
            definitions.append(parse(entry, check, anchor=now, prefix=f"schedules[{index}]."))
        except ValidationProblem as problem:
            problems.extend(f"{e['field']}: {e['message']}" for e in problem.errors)
    names = [d.name for d in definitions]
    problems.extend(
        f"schedule name {n!r} appears more than once" for n in sorted({n for n in names if names.count(n) > 1})
    )
    if problems:
        raise FileError(f"{path}: " + "; ".join(problems))
    return definitions


def plan(definitions: Sequence[Definition], current: Sequence[Mapping[str, Any]]) -> Plan:
    """What applying the file changes: missing → create, different → update, file-managed and absent → disable."""
    by_name = {row["name"]: row for row in current}
    result = Plan()
    for definition in definitions:
        row = by_name.get(definition.name)
        if row is None:
            result.changes.append(Change("create", definition.name, definition=definition))
            continue
        differing = differences(definition, row)
        if differing:
            result.changes.append(Change("update", definition.name, differing, definition))
        else:
            result.unchanged.append(definition.name)
    wanted = {d.name for d in definitions}
    for row in current:
        if row["source"] == SOURCE and row["name"] not in wanted and row["enabled"]:
            result.changes.append(Change("disable", row["name"]))
    return result


def differences(definition: Definition, row: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns whose stored value differs from the definition (and `source` when the file takes it over)."""
    differing = [key for key, value in definition.columns().items() if row[key] != value]
    if row["source"] != SOURCE:
        differing.append("source")
    return tuple(differing)


async def apply(connection: asyncpg.Connection, changes: Sequence[Change]) -> None:
    """Carry out a plan in one transaction."""
    async with connection.transaction():
        for change in changes:
            if change.action == "create" and change.definition is not None:
                await schedule_store.create(connection, change.definition, SOURCE)
            elif change.action == "update" and change.definition is not None:
                row = await schedule_store.get_by_name(connection, change.name)
                if row is not None:
                    await schedule_store.replace(connection, row, change.definition, SOURCE)
            elif change.action == "disable":
                await connection.execute(
                    "UPDATE schedules SET enabled = false, updated_at = now() WHERE name = $1", change.name
                )
                await schedule_store.notify(connection)


async def current_rows(connection: asyncpg.Connection) -> list[asyncpg.Record]:
    return await schedule_store.list_all(connection, limit=1_000_000)
