"""`gleaner schedules apply FILE.yaml`: make the file-managed schedules and sites match a declarative file (GitOps).

Schedules missing from the file that the file created before are disabled; sites missing from it are left as
they are (a site is shared by API submissions too, so a file never removes one).
"""

from __future__ import annotations

import asyncio
import difflib
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from gleaner.services.scheduler import apscheduler_file
from gleaner.shared.config import Config
from gleaner.shared.db import init_connection
from gleaner.shared.errors import GleanerError, ValidationProblem
from gleaner.shared.scheduling import schedule_store
from gleaner.shared.scheduling.definitions import Definition, TemplateCheck, parse
from gleaner.shared.site_rules import SitePolicy, parse_site
from gleaner.shared.site_writes import POLICY_FIELDS, UPSERT_SITE

SOURCE = "file"
# the job-template check as the gateway would run it now: kinds as workers registered them in the database
CheckOf = Callable[[asyncpg.Connection], Awaitable[TemplateCheck]]


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


@dataclass(frozen=True, slots=True)
class SiteChange:
    """A site of the file to create or update (with the policy fields that differ)."""

    action: str
    name: str
    policy: SitePolicy
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        suffix = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.action} site {self.name}{suffix}"


@dataclass(slots=True)
class Plan:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    site_changes: list[SiteChange] = field(default_factory=list)
    sites_unchanged: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Desired:
    """What the file asks for: schedule definitions and site policies by name."""

    schedules: list[Definition]
    sites: dict[str, SitePolicy] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeedOptions:
    """How a seed-format (APScheduler-style) file is read: the timezone of its cron entries and naive dates, and
    the job kind of each `scraper` (default: the scraper's name in lower case)."""

    timezone: str = "UTC"
    kinds: Mapping[str, str] = field(default_factory=dict)


def read_document(path: Path, seed: SeedOptions) -> Any:
    """The file as Gleaner's format: a seed-format file (schedules by name) is converted first."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FileError(f"cannot read {path}: {exc}") from None
    if apscheduler_file.is_seed_format(document):
        try:
            return apscheduler_file.convert(document, timezone=seed.timezone, kinds=seed.kinds)
        except apscheduler_file.SeedFileError as exc:
            raise FileError(f"{path}: {exc}") from None
    return {} if document is None else document


def load(path: Path, check_template: TemplateCheck, now: datetime, seed: SeedOptions | None = None) -> Desired:
    """Read and validate every schedule and site of the file; all problems are reported together."""
    document = read_document(path, seed or SeedOptions())
    if not isinstance(document, Mapping) or not isinstance(document.get("schedules", []), list):
        raise FileError(f"{path}: expected a mapping with a `schedules` list")
    if not isinstance(document.get("sites") or {}, Mapping):
        raise FileError(f"{path}: `sites` must be a mapping of site name to policy")
    unknown = sorted(set(document) - {"schedules", "sites"})
    if unknown:
        raise FileError(f"{path}: unknown top-level keys {', '.join(unknown)}")
    sites = _parse_sites(path, document.get("sites") or {})
    return Desired(_parse_all(path, document.get("schedules", []), check_template, now), sites)


def _parse_sites(path: Path, entries: Mapping[Any, Any]) -> dict[str, SitePolicy]:
    """Each entry validated as `PUT /sites/{name}` validates its body."""
    sites: dict[str, SitePolicy] = {}
    problems: list[str] = []
    for name, body in entries.items():
        try:
            sites[str(name)] = parse_site(str(name), {} if body is None else body)
        except ValidationProblem as problem:
            problems.extend(f"sites.{name}.{e['field']}: {e['message']}" for e in problem.errors)
    if problems:
        raise FileError(f"{path}: " + "; ".join(problems))
    return sites


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


def _stored(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def plan_sites(result: Plan, sites: Mapping[str, SitePolicy], current: Mapping[str, Mapping[str, Any]]) -> None:
    """Add the sites to create (absent) or update (a policy field differs) to `result`."""
    for name, policy in sites.items():
        row = current.get(name)
        if row is None:
            result.site_changes.append(SiteChange("create", name, policy))
            continue
        # array columns (proxies) come back as lists, the policy holds tuples
        differing = tuple(key for key in POLICY_FIELDS if _stored(row[key]) != getattr(policy, key))
        if differing:
            result.site_changes.append(SiteChange("update", name, policy, differing))
        else:
            result.sites_unchanged.append(name)


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


async def apply(connection: asyncpg.Connection, changes: Sequence[Change], sites: Sequence[SiteChange] = ()) -> None:
    """Carry out a plan in one transaction (sites first: a schedule's job template may name one)."""
    async with connection.transaction():
        for site in sites:
            await connection.execute(UPSERT_SITE, site.name, *(getattr(site.policy, key) for key in POLICY_FIELDS))
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


async def sync(
    config: Config, path: Path, check_of: CheckOf, *, dry_run: bool, seed: SeedOptions | None = None
) -> Plan:
    """Load and validate the file (job kinds as registered in the database), compare it with the database, and
    (unless `dry_run`) apply the changes."""
    connection = await asyncpg.connect(config.database_url)
    try:
        await init_connection(connection)
        desired = load(path, await check_of(connection), datetime.now(UTC), seed)
        result = plan(desired.schedules, [dict(row) for row in await current_rows(connection)])
        site_rows = await connection.fetch("SELECT * FROM sites WHERE name = ANY($1::text[])", list(desired.sites))
        plan_sites(result, desired.sites, {row["name"]: dict(row) for row in site_rows})
        if not dry_run:
            await apply(connection, result.changes, result.site_changes)
    finally:
        await connection.close()
    return result


def describe(result: Plan, *, dry_run: bool) -> list[str]:
    """What `gleaner schedules apply` prints: one line per change, then the totals."""
    counts = {action: sum(c.action == action for c in result.changes) for action in ("create", "update", "disable")}
    verb = "would " if dry_run else ""
    totals = ", ".join(f"{verb}{action} {n}" for action, n in counts.items())
    described: list[Change | SiteChange] = [*result.site_changes, *result.changes]
    lines = [verb + change.describe() for change in described]
    sites = f"; sites: {verb}change {len(result.site_changes)}, unchanged {len(result.sites_unchanged)}"
    summary = f"{totals}, unchanged {len(result.unchanged)}" + (
        sites if result.site_changes or result.sites_unchanged else ""
    )
    return [*lines, summary + (" (dry run: nothing changed)" if dry_run else "")]


def apply_cli(config: Config, path: str, check_of: CheckOf, *, dry_run: bool, seed: SeedOptions) -> int:
    """`gleaner schedules apply FILE [--dry-run]`: print the diff; exit 0 (file problems raise FileError)."""
    result = asyncio.run(sync(config, Path(path), check_of, dry_run=dry_run, seed=seed))
    for line in describe(result, dry_run=dry_run):
        print(line)
    return 0


def convert_cli(path: str, seed: SeedOptions) -> int:
    """`gleaner schedules apply FILE --convert`: the file in Gleaner's format on stdout (ready to be saved and
    applied), and what changed, as a unified diff against the original, on stderr."""
    original = Path(path).read_text(encoding="utf-8") if Path(path).is_file() else ""
    converted = yaml.safe_dump(read_document(Path(path), seed), sort_keys=False, allow_unicode=True)
    print(converted, end="")
    diff = difflib.unified_diff(
        original.splitlines(keepends=True), converted.splitlines(keepends=True), path, f"{path} (Gleaner format)"
    )
    sys.stderr.writelines(diff)
    return 0
