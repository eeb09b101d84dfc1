"""Seed 004's APScheduler-style schedule file → Gleaner schedule entries (pure).

The seed writes `schedules:` as a mapping by name; each entry has `type: cron|interval|date` with APScheduler's
trigger fields, `scraper` and `tickers` (one job per ticker), `priority: high|normal|low`, `enabled` and
`description`. Cron fields follow APScheduler: fields below the least significant one given take their minimum
(`hour: 10` alone is 10:00:00), fields above it are `*`; `day_of_week` numbers count from Monday = 0 (cron counts
from Sunday = 0), so they are shifted. Intervals get no jitter (APScheduler adds none); a `run_date` without an
offset is read in the entry's `timezone` (default: the file's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gleaner.shared.errors import GleanerError

# most significant first, as APScheduler's CronTrigger walks them; the minimum each takes below the last one given
CRON_FIELDS = ("month", "day", "day_of_week", "hour", "minute", "second")
MINIMUM = {"month": "1", "day": "1", "day_of_week": "*", "hour": "0", "minute": "0", "second": "0"}
INTERVAL_UNITS = {"weeks": 604_800, "days": 86_400, "hours": 3_600, "minutes": 60, "seconds": 1}
TIMING = {"cron": set(CRON_FIELDS), "interval": set(INTERVAL_UNITS), "date": {"run_date"}}
COMMON = {"type", "enabled", "description", "priority", "scraper", "tickers", "timezone"}
# Gleaner's own job fields an entry may add (a seed file has none of them)
JOB_FIELDS = ("kind", "payload", "queue", "site", "timeout_s")
EXTRA = {*JOB_FIELDS, "max_retries", "misfire", "overlap"}
DAY_NUMBER = re.compile(r"[0-6]")


class SeedFileError(GleanerError):
    """An entry of the seed-format file cannot be converted; the message names the entry and the field."""


def is_seed_format(document: Any) -> bool:
    """Seed 004 writes `schedules` as a mapping by name; Gleaner's file has a list."""
    return isinstance(document, Mapping) and isinstance(document.get("schedules"), Mapping)


def convert(document: Mapping[str, Any], *, timezone: str, kinds: Mapping[str, str]) -> dict[str, Any]:
    """The Gleaner file for a seed-format one; `kinds` maps a `scraper` to the job kind that runs it (by default
    the scraper's name in lower case). Every problem is reported at once."""
    problems: list[str] = []
    entries: list[dict[str, Any]] = []
    for name, entry in document["schedules"].items():
        try:
            entries.append(convert_entry(str(name), entry, timezone, kinds))
        except SeedFileError as exc:
            problems.append(str(exc))
    if problems:
        raise SeedFileError("; ".join(problems))
    sites = document.get("sites")
    return {**({"sites": sites} if sites else {}), "schedules": entries}


def convert_entry(name: str, entry: Any, timezone: str, kinds: Mapping[str, str]) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise SeedFileError(f"schedules.{name}: must be a mapping")
    kind = entry.get("type")
    if kind not in TIMING:
        raise SeedFileError(f"schedules.{name}.type: must be cron, interval or date")
    unknown = sorted(set(entry) - COMMON - EXTRA - TIMING[kind])
    if unknown:
        raise SeedFileError(f"schedules.{name}: unknown fields for type {kind}: {', '.join(map(str, unknown))}")
    zone = str(entry.get("timezone", timezone))
    converted: dict[str, Any] = {"name": name}
    if entry.get("description") is not None:
        converted["description"] = entry["description"]
    converted |= _timing(name, kind, entry, zone)
    converted |= {key: entry[key] for key in ("enabled", "misfire", "overlap") if key in entry}
    return converted | {"job": _job(name, entry, kinds)}


def _timing(name: str, kind: str, entry: Mapping[str, Any], zone: str) -> dict[str, Any]:
    if kind == "cron":
        return {"cron": cron_expression(name, entry), "timezone": zone}
    if kind == "interval":
        return {"interval_s": interval_seconds(name, entry), "jitter": 0}
    return {"at": run_date(name, entry.get("run_date"), zone)}


def cron_expression(name: str, entry: Mapping[str, Any]) -> str:
    """The 6-field cron expression (5 fields when the second is 0) of APScheduler's cron fields."""
    given = [field for field in CRON_FIELDS if entry.get(field) is not None]
    if not given:
        raise SeedFileError(f"schedules.{name}: a cron entry needs at least one of {', '.join(CRON_FIELDS)}")
    last = CRON_FIELDS.index(given[-1])
    values = {
        field: _text(entry[field]) if field in given else ("*" if index < last else MINIMUM[field])
        for index, field in enumerate(CRON_FIELDS)
    }
    values["day_of_week"] = day_of_week(name, values["day_of_week"])
    fields = [values[f] for f in ("second", "minute", "hour", "day", "month", "day_of_week")]
    return " ".join(fields[1:] if fields[0] == "0" else fields)


def day_of_week(name: str, value: str) -> str:
    """APScheduler's days (0 = Monday … 6 = Sunday, or names) in cron's numbering (1 = Monday … 7 = Sunday)."""
    if value == "*":
        return value
    converted: list[str] = []
    for item in value.replace(" ", "").split(","):
        days, _, step = item.partition("/")
        if days == "*":
            days = "0-6" if step else days
        bounds = [
            str(int(part) + 1) if DAY_NUMBER.fullmatch(part) else _day_name(name, part) for part in days.split("-")
        ]
        converted.append("-".join(bounds) + (f"/{step}" if step else ""))
    return ",".join(converted)


def _day_name(name: str, part: str) -> str:
    if part.lower() in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        return part.lower()
    raise SeedFileError(f"schedules.{name}.day_of_week: {part!r} is not a day (0-6 from Monday, or mon-sun)")


def interval_seconds(name: str, entry: Mapping[str, Any]) -> float:
    total = 0.0
    for unit, seconds in INTERVAL_UNITS.items():
        value = entry.get(unit)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SeedFileError(f"schedules.{name}.{unit}: must be a number of {unit}, 0 or more")
        total += value * seconds
    if total <= 0:
        raise SeedFileError(f"schedules.{name}: an interval entry needs weeks, days, hours, minutes or seconds")
    return total


def run_date(name: str, value: Any, zone: str) -> str:
    """An ISO 8601 instant; one without an offset is local time in `zone`."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(zone))
    except (ValueError, ZoneInfoNotFoundError):
        example = "e.g. 2025-11-07T15:30:00"
        raise SeedFileError(f"schedules.{name}.run_date: must be an ISO 8601 date and time, {example}") from None
    return moment.isoformat()


def _job(name: str, entry: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    scraper = entry.get("scraper")
    if scraper is None and entry.get("kind") is None:
        raise SeedFileError(f"schedules.{name}: needs `scraper` (or a Gleaner `kind`)")
    kind = entry.get("kind") or kinds.get(str(scraper), str(scraper).lower())
    payload = dict(entry.get("payload") or {}) | ({"scraper": scraper} if scraper is not None else {})
    job: dict[str, Any] = {"kind": kind, "payload": payload}
    job |= {key: entry[key] for key in ("queue", "site", "timeout_s", "priority") if entry.get(key) is not None}
    if entry.get("max_retries") is not None:
        retries = entry["max_retries"]
        job["max_attempts"] = retries + 1 if isinstance(retries, int) and not isinstance(retries, bool) else retries
    tickers = entry.get("tickers")
    if tickers:
        job["fan_out"] = {"key": "ticker", "values": list(tickers) if isinstance(tickers, list) else tickers}
    return job


def _text(value: Any) -> str:
    return str(value).strip()
