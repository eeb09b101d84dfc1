"""Schedule definitions as users write them (API bodies, YAML entries) → validated column values (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.field_checks import FieldReader, Invalid, number, text, timestamp
from gleaner.shared.scheduling import planner

# not all digits: `/schedules/{id-or-name}` reads a segment of digits as an id
NAME = re.compile(r"(?![0-9]+$)[A-Za-z0-9_.:-]{1,100}")
NAME_RULE = "required: 1-100 letters, digits, '_', '.', ':' or '-', not all digits"
# the bounds of a definition's numbers: an interval from a second to a year (planner arithmetic stays in range)
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 366 * 86_400.0
MAX_GRACE_S = 366 * 86_400.0
MAX_CRON_LENGTH = 200
MAX_DESCRIPTION = 1000
INTERVAL = number(MIN_INTERVAL_S, MAX_INTERVAL_S)
JITTER = number(0, planner.MAX_JITTER)
GRACE = number(0, MAX_GRACE_S)
DESCRIPTION = text(re.compile(f".{{0,{MAX_DESCRIPTION}}}", re.S), f"at most {MAX_DESCRIPTION} characters")
TIMING_FIELDS = ("interval_s", "cron", "at")
POLICY_FIELDS = ("misfire", "overlap", "misfire_grace_s", "enabled", "description")
FIELDS = frozenset({"name", "type", *TIMING_FIELDS, "timezone", "jitter", "job", *POLICY_FIELDS})
POLICIES = {"misfire": ("fire_once", "skip"), "overlap": ("skip", "allow")}
# what a definition that leaves them out gets (GET /scheduler/config shows them)
DEFAULT_MISFIRE = "fire_once"
DEFAULT_OVERLAP = "allow"
DEFAULT_GRACE_S = 60.0
DEFAULT_JITTER = 0.1
DEFAULT_TIMEZONE = "UTC"

Errors = list[dict[str, str]]
# validates a job template and returns it normalized; raises ValidationProblem with field paths under `prefix`
TemplateCheck = Callable[[Any, str], dict[str, Any]]
Converter = Callable[[Any], float]


@dataclass(frozen=True, slots=True)
class Definition:
    """A valid schedule: its name, timing spec and policies, and the normalized job template."""

    name: str
    spec: planner.Spec
    job: dict[str, Any]
    misfire: str = DEFAULT_MISFIRE
    overlap: str = DEFAULT_OVERLAP
    misfire_grace_s: float = DEFAULT_GRACE_S
    enabled: bool = True
    description: str = ""

    @property
    def kind(self) -> str:
        return {planner.Interval: "interval", planner.Cron: "cron", planner.Once: "once"}[type(self.spec)]

    def columns(self) -> dict[str, Any]:
        """The `schedules` columns this definition sets (timing columns of other kinds are cleared)."""
        spec = self.spec
        return {
            "name": self.name,
            "kind": self.kind,
            "interval_s": spec.every_s if isinstance(spec, planner.Interval) else None,
            "jitter": spec.jitter if isinstance(spec, planner.Interval) else 0.0,
            "cron": spec.expression if isinstance(spec, planner.Cron) else None,
            "timezone": spec.timezone if isinstance(spec, planner.Cron) else DEFAULT_TIMEZONE,
            "at": spec.at if isinstance(spec, planner.Once) else None,
            "job": self.job,
            "misfire": self.misfire,
            "overlap": self.overlap,
            "misfire_grace_s": self.misfire_grace_s,
            "enabled": self.enabled,
            "description": self.description,
        }


def parse(body: Any, check_template: TemplateCheck, *, anchor: datetime, prefix: str = "") -> Definition:
    """Validate a definition; every problem is reported at once as a 422 with field paths under `prefix`."""
    if not isinstance(body, Mapping):
        raise ValidationProblem([field_error(prefix or "body", "must be an object")])
    errors: Errors = [field_error(prefix + key, "unknown field") for key in body if key not in FIELDS]
    name = body.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        errors.append(field_error(prefix + "name", NAME_RULE))
    spec = _spec(body, anchor, prefix, errors)
    job = _template(body.get("job"), check_template, prefix, errors)
    policies = {key: _choice(body, key, prefix, errors) for key in POLICIES}
    grace = FieldReader(body, prefix, errors).get("misfire_grace_s", GRACE, default=DEFAULT_GRACE_S)
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append(field_error(prefix + "enabled", "must be true or false"))
    description = FieldReader(body, prefix, errors).get("description", DESCRIPTION, default="")
    if errors or spec is None or job is None or grace is None:
        raise ValidationProblem(errors, "the schedule definition is invalid")
    return Definition(str(name), spec, job, policies["misfire"], policies["overlap"], grace, bool(enabled), description)


def _spec(body: Mapping[str, Any], anchor: datetime, prefix: str, errors: Errors) -> planner.Spec | None:
    given = [key for key in TIMING_FIELDS if body.get(key) is not None]
    if len(given) != 1:
        errors.append(field_error(prefix + "interval_s", "give exactly one of interval_s, cron or at"))
        return None
    declared = body.get("type")
    implied = {"interval_s": "interval", "cron": "cron", "at": "once"}[given[0]]
    if declared is not None and declared != implied:
        errors.append(field_error(prefix + "type", f"is {declared!r} but {given[0]} makes it {implied!r}"))
        return None
    try:
        return _build(given[0], body, anchor, prefix, errors)
    except planner.SpecError as exc:
        errors.append(field_error(prefix + exc.field, exc.message))
        return None


def _build(key: str, body: Mapping[str, Any], anchor: datetime, prefix: str, errors: Errors) -> planner.Spec | None:
    if key == "interval_s":
        reader = FieldReader(body, prefix, errors)
        every = reader.get("interval_s", INTERVAL, default=None)
        jitter = reader.get("jitter", JITTER, default=DEFAULT_JITTER)
        return planner.interval(every, anchor, jitter) if not reader.failed("interval_s", "jitter") else None
    if key == "cron":
        return _cron(body, prefix, errors)
    try:
        return planner.once(timestamp(body["at"]))
    except Invalid as exc:
        errors.append(field_error(prefix + "at", str(exc)))
        return None


def _cron(body: Mapping[str, Any], prefix: str, errors: Errors) -> planner.Spec | None:
    expression, timezone = body["cron"], body.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(expression, str) or not isinstance(timezone, str):
        errors.append(field_error(prefix + "cron", "cron and timezone must be strings"))
        return None
    if len(expression) > MAX_CRON_LENGTH or "\x00" in expression:
        errors.append(field_error(prefix + "cron", f"must be at most {MAX_CRON_LENGTH} characters, no NUL"))
        return None
    problems = planner.cron_problems(expression, timezone)
    errors.extend(field_error(prefix + problem.field, problem.message) for problem in problems)
    return None if problems else planner.cron(expression, timezone)


def _template(job: Any, check: TemplateCheck, prefix: str, errors: Errors) -> dict[str, Any] | None:
    if job is None:
        errors.append(field_error(prefix + "job", "required: the job template (kind, payload, queue, ...)"))
        return None
    try:
        return check(job, prefix + "job.")
    except ValidationProblem as problem:
        errors.extend(field_error(str(e["field"]), str(e["message"])) for e in problem.errors)
        return None


def _choice(body: Mapping[str, Any], key: str, prefix: str, errors: Errors) -> str:
    allowed = POLICIES[key]
    value = body.get(key, DEFAULT_MISFIRE if key == "misfire" else DEFAULT_OVERLAP)
    if value not in allowed:
        errors.append(field_error(prefix + key, "must be one of " + ", ".join(allowed)))
        return allowed[0]
    return str(value)
