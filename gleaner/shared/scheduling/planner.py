"""Next fire times of interval, cron and one-shot schedules, and what a due schedule fires (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MAX_JITTER = 0.5
# a cron schedule down for ages must not make one tick walk millions of slots
MAX_WALK = 10_000


class SpecError(ValueError):
    """A schedule definition is invalid; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Interval:
    """Every `every_s` seconds from `anchor`; each fire moves by up to ±`jitter`·interval around its slot."""

    every_s: float
    anchor: datetime
    jitter: float = 0.1


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression evaluated in an IANA timezone (DST-correct, Debian cron semantics): 5 fields, or 6 with a
    leading seconds field (`*/10 * * * * *`: every ten seconds), as APScheduler's `second` allows."""

    expression: str
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class Once:
    at: datetime


Spec = Interval | Cron | Once


def interval(every_s: float, anchor: datetime, jitter: float = 0.1) -> Interval:
    if not every_s > 0:
        raise SpecError("interval_s", "must be greater than 0")
    if not 0 <= jitter <= MAX_JITTER:
        raise SpecError("jitter", f"must be between 0 and {MAX_JITTER}")
    return Interval(float(every_s), _aware(anchor), float(jitter))


def cron(expression: str, timezone: str = "UTC") -> Cron:
    problems = cron_problems(expression, timezone)
    if problems:
        raise problems[0]
    return Cron(expression, timezone)


def cron_problems(expression: str, timezone: str) -> list[SpecError]:
    """Everything wrong with a cron schedule: its timezone and its expression are judged apart."""
    problems: list[SpecError] = []
    zone: tzinfo = UTC
    try:
        zone = _zone(timezone)
    except SpecError as exc:
        problems.append(exc)
    if len(expression.split()) not in (5, 6):
        fields = "minute hour day-of-month month day-of-week"
        problems.append(SpecError("cron", f"must have 5 fields ({fields}) or 6 (a seconds field first)"))
        return problems
    try:
        CronSim(expression, datetime.now(zone))
    except CronSimError as exc:
        problems.append(SpecError("cron", str(exc)))
    return problems


def once(at: datetime) -> Once:
    return Once(_aware(at))


def next_slot(spec: Spec, after: datetime) -> datetime | None:
    """The first nominal slot strictly after `after` (None: a one-shot that is past)."""
    after = _aware(after)
    if isinstance(spec, Interval):
        elapsed = (after - spec.anchor).total_seconds()
        steps = max(0, int(elapsed // spec.every_s) + 1)
        return spec.anchor + timedelta(seconds=steps * spec.every_s)
    if isinstance(spec, Cron):
        local = after.astimezone(_zone(spec.timezone))
        return next(iter(CronSim(spec.expression, local))).astimezone(UTC)
    return spec.at if spec.at > after else None


def latest_slot_at_or_before(spec: Spec, moment: datetime, first: datetime) -> datetime:
    """The last slot ≤ `moment`, searching forward from `first` (a slot ≤ `moment`)."""
    moment = _aware(moment)
    if isinstance(spec, Interval):
        steps = int((moment - spec.anchor).total_seconds() // spec.every_s)
        return spec.anchor + timedelta(seconds=max(0, steps) * spec.every_s)
    slot = first
    for _ in range(MAX_WALK):
        following = next_slot(spec, slot)
        if following is None or following > moment:
            break
        slot = following
    return slot


def fire_time(spec: Spec, slot: datetime, rng: random.Random | None = None) -> datetime:
    """When to fire a slot: the slot itself, moved by jitter for intervals."""
    if isinstance(spec, Interval) and spec.jitter > 0:
        offset = (rng or random).uniform(-spec.jitter, spec.jitter) * spec.every_s
        return slot + timedelta(seconds=offset)
    return slot


def preview(spec: Spec, now: datetime, count: int) -> list[datetime]:
    """The next `count` nominal slots after `now`."""
    slots: list[datetime] = []
    cursor = _aware(now)
    while len(slots) < count and (slot := next_slot(spec, cursor)) is not None:
        slots.append(slot)
        cursor = slot
    return slots


@dataclass(frozen=True, slots=True)
class Plan:
    """What a due schedule does now: fire `slot` (or nothing), and wait for `next_slot` next."""

    slot: datetime | None
    next_slot: datetime | None
    missed: int


def plan_due(spec: Spec, due_slot: datetime, now: datetime, misfire: str, grace_s: float) -> Plan:
    """A schedule whose slot `due_slot` came due: which slot to fire now and the one after.

    Slots missed while down or paused collapse into one: `fire_once` fires the latest of them;
    `skip` fires it only if it is within `grace_s` of now. A schedule never fires twice for the past.
    """
    latest = latest_slot_at_or_before(spec, now, due_slot)
    missed = _count_between(spec, due_slot, latest)
    following = next_slot(spec, latest)
    late_s = (_aware(now) - latest).total_seconds()
    if misfire == "skip" and late_s > grace_s:
        return Plan(None, following, missed + 1)
    return Plan(latest, following, missed)


def _count_between(spec: Spec, first: datetime, last: datetime) -> int:
    """Slots in [`first`, `last`): the ones a collapse onto `last` drops."""
    if last <= first:
        return 0
    if isinstance(spec, Interval):
        return round((last - first).total_seconds() / spec.every_s)
    count, slot = 1, first
    for _ in range(MAX_WALK):
        following = next_slot(spec, slot)
        if following is None or following >= last:
            break
        count, slot = count + 1, following
    return count


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError("timezone", f"unknown IANA timezone {name!r}") from None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
