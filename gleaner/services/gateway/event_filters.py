"""Which events a stream or a webhook wants (pure): each field a set of accepted values, all fields must match."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from gleaner.shared import events
from gleaner.shared.errors import field_error
from gleaner.shared.field_checks import whole_number
from gleaner.shared.kind_rules import KIND_NAME
from gleaner.shared.site_rules import NAME as SITE_NAME

Errors = list[dict[str, str]]
MAX_VALUES = 50
DIGITS = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Empty means "any". `type` and `kind` accept a trailing `*` (`job.*`, `boards.*`) as a prefix match."""

    type: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    queue: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    site: tuple[str, ...] = ()
    schedule_id: tuple[int, ...] = ()
    job_id: tuple[int, ...] = ()

    def matches(self, event: events.Event) -> bool:
        return (
            _glob(self.type, event["type"])
            and _glob(self.kind, event["kind"])
            and _one_of(self.queue, event["queue"])
            and _one_of(self.state, event["state"])
            and _one_of(self.site, event["site"])
            and _one_of(self.schedule_id, event["schedule_id"])
            and _one_of(self.job_id, event["job_id"])
        )

    def as_dict(self) -> dict[str, list[str] | list[int]]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name)}


NAMES = tuple(f.name for f in fields(EventFilter))
INTEGER_FIELDS = frozenset({"schedule_id", "job_id"})
STATES = frozenset({"queued", "scheduled", "running", *events.JOB_STATES})


def parse_filter(values: Mapping[str, Sequence[object]], prefix: str = "") -> tuple[EventFilter, Errors]:
    """From query parameters or a JSON object (each name → a list of values); errors name `prefix + field`."""
    errors: Errors = []

    def take(name: str) -> list[object]:
        items = list(values.get(name, ()))
        if len(items) > MAX_VALUES or not all(_valid(name, item) for item in items):
            errors.append(field_error(prefix + name, _hint(name)))
            return []
        return items

    text = {name: tuple(str(item) for item in take(name)) for name in NAMES if name not in INTEGER_FIELDS}
    ids = {name: tuple(_integer(item) for item in take(name)) for name in sorted(INTEGER_FIELDS)}
    wanted = EventFilter(
        type=text["type"],
        kind=text["kind"],
        queue=text["queue"],
        state=text["state"],
        site=text["site"],
        schedule_id=ids["schedule_id"],
        job_id=ids["job_id"],
    )
    return wanted, errors


def _valid(name: str, item: object) -> bool:
    if name in INTEGER_FIELDS:
        whole = whole_number(item)  # a JSON body's 5 or 5.0; a query's "5"
        text = str(whole) if whole is not None else item
        return isinstance(text, str) and DIGITS.fullmatch(text) is not None
    if not isinstance(item, str):
        return False
    if name == "type":
        return item in events.TYPES or (item.endswith("*") and len(item) <= 64)
    if name == "kind":
        return bool(KIND_NAME.fullmatch(item.removesuffix(".*"))) or item == "*"
    if name == "state":
        return item in STATES
    if name == "site":
        return bool(SITE_NAME.fullmatch(item))
    return 0 < len(item) <= 200


def _integer(item: object) -> int:
    whole = whole_number(item)
    return whole if whole is not None else int(str(item))


def _hint(name: str) -> str:
    return {
        "type": f"an event type ({', '.join(events.TYPES)}) or a prefix ending in `*`",
        "kind": "a job kind, or a kind prefix ending in `.*`",
        "state": f"one of {', '.join(sorted(STATES))}",
        "site": "a site name",
        "schedule_id": "a schedule id",
        "job_id": "a job id",
    }.get(name, "a name of 1-200 characters") + f" (at most {MAX_VALUES} values)"


def _glob(patterns: tuple[str, ...], value: str | None) -> bool:
    if not patterns:
        return True
    if value is None:
        return False
    return any(value.startswith(p[:-1]) if p.endswith("*") else value == p for p in patterns)


def _one_of(accepted: tuple[object, ...], value: object) -> bool:
    return not accepted or value in accepted
