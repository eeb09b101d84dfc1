"""Pure validation of job submissions: a JSON body in, a typed JobSpec (or field errors naming paths) out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from gleaner.shared.config import Config
from gleaner.shared.errors import Problem, ValidationProblem, field_error
from gleaner.shared.field_checks import MAX_ID, FieldReader, Invalid, boolean, integer, number, text, timestamp
from gleaner.shared.kind_rules import KIND_NAME, KindRules, privileged_by_name
from gleaner.shared.priorities import priority
from gleaner.shared.site_rules import site_name

DEDUPE_KEY = re.compile(r".{1,200}", re.S)
MAX_BATCH = 1000
MAX_FAN_OUT = 1000
MAX_DELAY_S = 366 * 86_400.0
# the options a schedule's job template may hold too, beside kind and payload
OPTION_FIELDS = ("queue", "priority", "max_attempts", "timeout_s", "soft_timeout_s", "retry_base_s", "retry_cap_s")
# workflows (issue 14): what a submission may say about the jobs it waits for (never in a template)
DEPENDENCY_FIELDS = ("depends_on", "on_dependency_failure", "allow_partial")
FIELDS = frozenset({"kind", "payload", *OPTION_FIELDS, "run_at", "delay_s", "site", "dedupe_key", *DEPENDENCY_FIELDS})
MAX_DEPENDENCIES = 1000
ON_DEPENDENCY_FAILURE = ("cancel", "run")

Errors = list[dict[str, str]]
# a schedule's job template: a submission minus the fields that only make sense for one job
NOT_IN_TEMPLATE = frozenset({"run_at", "delay_s", "dedupe_key", *DEPENDENCY_FIELDS})
TEMPLATE_FIELDS = (*OPTION_FIELDS, "site")


@dataclass(slots=True)
class JobSpec:
    """A validated submission; `run_at` None with `delay_s` None means "now" (judged by the database clock).

    Not frozen, though nothing changes it once made: a frozen dataclass sets each of its 16 fields through
    `object.__setattr__`, which was 1.5 of the 4.1 µs that parsing a batch's noop job took (timeit, 1,000-job batches).
    """

    kind: str
    payload: Any
    queue: str
    priority: int
    max_attempts: int
    timeout_s: float
    retry_base_s: float
    retry_cap_s: float
    run_at: datetime | None
    delay_s: float | None
    site: str | None
    dedupe_key: str | None
    # None: the kind's default soft limit (a worker's `Registry`), else none
    soft_timeout_s: float | None = None
    # workflows (issue 14): the jobs this one waits for, and what it does when one of them does not succeed
    depends_on: tuple[int, ...] = ()
    on_dependency_failure: str = "cancel"
    allow_partial: bool = False


@dataclass(frozen=True, slots=True)
class Checks:
    """Each field's converter and default under one configuration and set of kinds, in the order errors are
    reported: made once per request, not once per job of a batch.

    `plain` reads the usual item of a batch (a kind and a payload, nothing else) without the field loop: see
    `_PlainReader`.
    """

    converters: dict[str, Callable[[Any], Any]]
    defaults: dict[str, Any]
    plain: Callable[[Any], JobSpec | None]

    @classmethod
    def of(cls, config: Config, kinds: KindRules | None) -> Checks:
        timeout = number(0.001, 86_400)
        converters: dict[str, Callable[[Any], Any]] = {
            "kind": _kind(kinds),
            "payload": _payload,
            "queue": _queue(config),
            "priority": priority,
            "max_attempts": integer(1, 1000),
            "timeout_s": timeout,
            "retry_base_s": number(0, 86_400),
            "retry_cap_s": number(0, 30 * 86_400),
            "run_at": timestamp,
            "delay_s": number(0, MAX_DELAY_S),
            "site": site_name,
            "dedupe_key": text(DEDUPE_KEY, "1-200 characters"),
            "soft_timeout_s": timeout,
            "depends_on": _job_ids,
            "on_dependency_failure": _on_dependency_failure,
            "allow_partial": boolean,
        }
        defaults = {name: None for name in converters} | {
            "kind": "",
            "priority": 0,
            "max_attempts": config.default_max_attempts,
            "timeout_s": config.default_timeout_s,
            "retry_base_s": config.default_retry_base_s,
            "retry_cap_s": config.default_retry_cap_s,
            "depends_on": (),
            "on_dependency_failure": "cancel",
            "allow_partial": False,
        }
        return cls(converters, defaults, _PlainReader(config, kinds, converters["kind"], defaults))


PLAIN_FIELDS = frozenset({"kind", "payload"})


class _PlainReader:
    """The spec of a submission that names a valid kind and at most an object payload (`parse_job` makes the same
    one), or None for any other (`parse_job` then reads it field by field, naming what is wrong).

    Such a job is its kind's defaults plus its payload: the defaults are applied once per kind, not once per job
    (parsing a batch's noop job 4.3 -> 1.3 µs, 1,000-job batches, timeit).
    """

    _NAMES = tuple(field.name for field in fields(JobSpec))[2:]  # a spec's fields after kind and payload

    def __init__(
        self, config: Config, kinds: KindRules | None, kind_check: Callable[[Any], str], defaults: dict[str, Any]
    ) -> None:
        self._config = config
        self._kinds = kinds
        self._kind_check = kind_check
        self._defaults = defaults
        # per kind: the spec's fields after kind and payload, or None when the kind (or the defaults) do not pass
        self._after_payload: dict[str, tuple[Any, ...] | None] = {}

    def __call__(self, item: Any) -> JobSpec | None:
        if type(item) is not dict or not item.keys() <= PLAIN_FIELDS:
            return None
        kind = item.get("kind")
        if type(kind) is not str:
            return None
        rest = self._after_payload.get(kind)
        if rest is None:
            rest = self._learn(kind)
            if rest is None:
                return None
        payload = item.get("payload")
        if payload is None:
            payload = {}
        elif type(payload) is not dict:
            return None
        kinds = self._kinds
        if kinds is not None and kind in kinds.checks and kinds.payload_errors(kind, payload):
            return None
        return JobSpec(kind, payload, *rest)

    def _learn(self, kind: str) -> tuple[Any, ...] | None:
        if kind in self._after_payload or len(self._after_payload) >= MAX_PLAIN_KINDS:
            return None
        rest = self._after_payload[kind] = self._fields_of(kind)
        return rest

    def _fields_of(self, kind: str) -> tuple[Any, ...] | None:
        try:
            self._kind_check(kind)
        except Invalid:
            return None
        values = {**self._defaults, "queue": _default_queue(kind, self._config, self._kinds)}
        if values["retry_cap_s"] < values["retry_base_s"]:
            return None  # every such job fails the cross checks: parse_job says so
        return tuple(values[name] for name in self._NAMES)


# the kinds one Checks remembers for `plain` (a body naming many unknown kinds must not grow it without end)
MAX_PLAIN_KINDS = 1000


class LatestChecks:
    """The Checks of the latest kinds, made again only when the kinds change (a reload every few seconds at most):
    making them took 7.6 µs, half of checking a one-job submission."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._latest: tuple[KindRules, Checks] | None = None

    def of(self, kinds: KindRules) -> Checks:
        if self._latest is None or self._latest[0] is not kinds:
            self._latest = (kinds, Checks.of(self._config, kinds))
        return self._latest[1]


def parse_job(
    data: Any, config: Config, prefix: str = "", kinds: KindRules | None = None, checks: Checks | None = None
) -> tuple[JobSpec | None, Errors]:
    """Validate one submission; field paths are prefixed (e.g. `jobs[3].`) for batch items.

    `kinds` are the registered job kinds with their payload checks; None skips those checks (pure unit tests).
    `checks` made from the same `config` and `kinds` spare a batch making them again for each job.
    """
    if not isinstance(data, dict):
        return None, [field_error(prefix.rstrip(".") or "body", "must be a JSON object")]
    checks = checks or Checks.of(config, kinds)
    spec = checks.plain(data)
    if spec is not None:
        return spec, []
    reader = FieldReader(data, prefix)
    if not data.keys() <= FIELDS:
        for name in sorted(data.keys() - FIELDS):
            reader.fail(name, "unknown field")
    values = dict(checks.defaults)
    # absent (or null) fields keep their defaults: a batch job names two or three of the sixteen
    for name, convert in checks.converters.items():
        if data.get(name) is not None:
            values[name] = reader.get(name, convert, default=values[name])
        elif name == "kind":
            reader.fail(name, "is required")
    if values["payload"] is None:
        values["payload"] = {}
    if data.get("queue") is None:
        values["queue"] = _default_queue(data.get("kind"), config, kinds)
    spec = JobSpec(**values)
    _cross_checks(spec, reader, kinds)
    return (None, reader.errors) if reader.errors else (spec, [])


@dataclass(frozen=True, slots=True)
class JobChange:
    """A change of a waiting job (PATCH /jobs/{id}): its priority and/or when it runs (None: left as it is)."""

    priority: int | None
    run_at: datetime | None
    delay_s: float | None


CHANGE_FIELDS = ("priority", "run_at", "delay_s")


def parse_change(data: Any) -> JobChange:
    """A 422 naming every bad field; at least one of `priority`, `run_at` or `delay_s`, not both run_at and delay_s."""
    if not isinstance(data, dict):
        raise ValidationProblem([field_error("body", "must be a JSON object")])
    reader = FieldReader(data)
    for name in sorted(set(data) - set(CHANGE_FIELDS)):
        reader.fail(name, "unknown field")
    change = JobChange(
        priority=reader.get("priority", priority, default=None),
        run_at=reader.get("run_at", timestamp, default=None),
        delay_s=reader.get("delay_s", number(0, MAX_DELAY_S), default=None),
    )
    if change.run_at is not None and change.delay_s is not None:
        reader.fail("delay_s", "give either run_at or delay_s, not both")
    if all(data.get(name) is None for name in CHANGE_FIELDS) and not reader.errors:
        reader.fail("body", "give priority, run_at or delay_s")
    if reader.errors:
        raise ValidationProblem(reader.errors)
    return change


def parse_one(data: Any, config: Config, kinds: KindRules | None = None, checks: Checks | None = None) -> JobSpec:
    spec, errors = parse_job(data, config, kinds=kinds, checks=checks)
    if spec is None:
        raise ValidationProblem(errors)
    return spec


def parse_batch(
    data: Any, config: Config, kinds: KindRules | None = None, checks: Checks | None = None
) -> list[JobSpec]:
    """All or nothing: every item's errors are reported, under `jobs[i].field`."""
    if not isinstance(data, dict):
        raise ValidationProblem([field_error("body", "must be a JSON object with a `jobs` list")])
    unknown = sorted(set(data) - {"jobs", "then"})
    jobs = data.get("jobs")
    if unknown or not isinstance(jobs, list) or not jobs or len(jobs) > MAX_BATCH:
        errors = [field_error(name, "unknown field") for name in unknown]
        if not isinstance(jobs, list) or not jobs or len(jobs) > MAX_BATCH:
            errors.append(field_error("jobs", f"must be a list of 1 to {MAX_BATCH} jobs"))
        raise ValidationProblem(errors)
    specs: list[JobSpec] = []
    errors = []
    checks = checks or Checks.of(config, kinds)
    plain = checks.plain
    for index, item in enumerate(jobs):
        spec = plain(item)
        if spec is None:
            spec, item_errors = parse_job(item, config, f"jobs[{index}].", kinds, checks)
            errors.extend(item_errors)
        if spec is not None:
            specs.append(spec)
    if errors:
        raise ValidationProblem(errors[:100])
    return specs


def parse_then(data: Any, config: Config, kinds: KindRules | None = None) -> JobSpec | None:
    """A batch's `then`: one more job that waits for every job of the batch (and their children), whatever their
    outcomes, and finds their ids and outcome counts under `payload.dependencies` when it runs."""
    then = data.get("then") if isinstance(data, dict) else None
    if then is None:
        return None
    spec, errors = parse_job(then, config, "then.", kinds)
    if isinstance(then, dict):
        errors += [field_error(f"then.{n}", "not allowed in `then`") for n in sorted(NOT_IN_TEMPLATE & set(then))]
    if spec is None or errors:
        raise ValidationProblem(errors)
    return spec


def template_check(config: Config, kinds: KindRules | None) -> Callable[[Any, str], dict[str, Any]]:
    """The job-template check of schedule definitions: a submission without timing or dedupe fields.

    The template is normalized to the fields given (timeouts as floats), so a file applied twice compares equal;
    defaults that are left out are filled in from the configuration when a job is fired.
    """

    def check(job: Any, prefix: str) -> dict[str, Any]:
        fan_out: dict[str, Any] | None = None
        errors: Errors = []
        then: dict[str, Any] | None = None
        if isinstance(job, dict) and "fan_out" in job:
            fan_out, errors = parse_fan_out(job["fan_out"], prefix + "fan_out")
        if isinstance(job, dict) and job.get("then") is not None:
            then, then_errors = _template(job["then"], config, prefix + "then.", kinds)
            errors += then_errors
        if isinstance(job, dict):
            job = {name: value for name, value in job.items() if name not in ("fan_out", "then")}
        template, job_errors = _template(job, config, prefix, kinds)
        errors += job_errors
        if template is None or errors:
            raise ValidationProblem(errors)
        if fan_out is not None:
            _check_fanned_payloads(job, fan_out, lambda item, where: parse_job(item, config, where, kinds)[1], prefix)
        return template | ({"fan_out": fan_out} if fan_out else {}) | ({"then": then} if then else {})

    return check


def _template(job: Any, config: Config, prefix: str, kinds: KindRules | None) -> tuple[dict[str, Any] | None, Errors]:
    """A template (or a template's `then`) as stored: kind, payload and the fields given; or its errors."""
    spec, errors = parse_job(job, config, prefix, kinds)
    if isinstance(job, dict):
        errors += [field_error(prefix + n, "not allowed in a job template") for n in sorted(NOT_IN_TEMPLATE & set(job))]
    if spec is None or errors:
        return None, errors
    given = {name for name, value in job.items() if value is not None}
    return {"kind": spec.kind, "payload": spec.payload} | {
        name: getattr(spec, name) for name in TEMPLATE_FIELDS if name in given
    }, []


def _check_fanned_payloads(
    job: dict[str, Any], fan_out: dict[str, Any], errors_of: Callable[[Any, str], Errors], prefix: str
) -> None:
    """Each job a fan-out will create must pass as a submission (a URL per value is checked like any URL)."""
    payload = job.get("payload") or {}
    errors: Errors = []
    for index, value in enumerate(fan_out["values"]):
        where = f"{prefix}fan_out.values[{index}]"
        item = {**job, "payload": {**payload, fan_out["key"]: value}}
        errors += [field_error(where, f"{e['field']}: {e['message']}") for e in errors_of(item, prefix)]
    if errors:
        raise ValidationProblem(errors[:100])


def parse_fan_out(value: Any, where: str) -> tuple[dict[str, Any] | None, Errors]:
    """A template's `fan_out`: `{"key": k, "values": [...]}` fires one job per value, with payload[k] = value."""
    if not isinstance(value, dict) or set(value) != {"key", "values"}:
        return None, [field_error(where, 'must be {"key": "<payload key>", "values": [<1 to 1000 values>]}')]
    key, values = value["key"], value["values"]
    errors: Errors = []
    if not isinstance(key, str) or not 1 <= len(key) <= 100:
        errors.append(field_error(where + ".key", "must be a string of 1-100 characters"))
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_FAN_OUT:
        errors.append(field_error(where + ".values", f"must be a list of 1 to {MAX_FAN_OUT} values"))
    return (None, errors) if errors else ({"key": key, "values": values}, [])


def _cross_checks(spec: JobSpec, reader: FieldReader, kinds: KindRules | None) -> None:
    if spec.run_at is not None and spec.delay_s is not None:
        reader.fail("delay_s", "give either run_at or delay_s, not both")
    if spec.retry_cap_s < spec.retry_base_s and not reader.failed("retry_base_s", "retry_cap_s"):
        reader.fail("retry_cap_s", "must not be below retry_base_s")
    soft_s = spec.soft_timeout_s
    if soft_s is not None and soft_s >= spec.timeout_s and not reader.failed("soft_timeout_s", "timeout_s"):
        reader.fail("soft_timeout_s", f"must be below timeout_s ({spec.timeout_s:g})")
    if kinds is not None and not reader.failed("kind", "payload"):
        for path, message in kinds.payload_errors(spec.kind, spec.payload):
            reader.fail(f"payload.{path}" if path else "payload", message)


def refuse_privileged(data: Any, kinds: KindRules | None, allowed: bool) -> None:
    """403 naming each job of a raw body (one job, a batch, a schedule's template) whose kind needs `admin`,
    unless the caller has it; checked before the body's other fields."""
    if allowed:
        return
    privileged = kinds.is_privileged if kinds is not None else privileged_by_name
    if not any(privileged(kind) for kind in kind_names(data)):
        return
    denied = [(where, kind) for where, kind in _kinds_asked(data) if privileged(kind)]
    if denied:
        names = ", ".join(sorted({kind for _, kind in denied}))
        errors = [field_error(where, f"{kind!r} needs the `admin` scope") for where, kind in denied[:100]]
        raise Problem(403, "Forbidden", f"job kind {names} needs the `admin` scope", errors=errors)


def kind_names(data: Any) -> set[str]:
    """The kinds a raw body (one job, a batch, a template) names, without where (cheap: once per submission)."""
    items, then, _ = _job_bodies(data)
    kinds = (item.get("kind") for item in (*items, then) if isinstance(item, dict))
    return {kind for kind in kinds if isinstance(kind, str)}  # a hostile kind may be any JSON value, {} too


def _kinds_asked(data: Any) -> list[tuple[str, str]]:
    """(field, kind) of each job in a raw body: `kind` for one job (or a template), `jobs[i].kind` for a batch,
    and `then.kind` for a batch's or a template's callback."""
    items, then, batched = _job_bodies(data)
    asked = [(f"jobs[{i}].kind" if batched else "kind", item) for i, item in enumerate(items)]
    asked.append(("then.kind", then))
    return [
        (where, item["kind"]) for where, item in asked if isinstance(item, dict) and isinstance(item.get("kind"), str)
    ]


def _job_bodies(data: Any) -> tuple[list[Any], Any, bool]:
    """The jobs a raw body holds, unchecked: a batch's items (or the body itself), its `then`, and whether it is a
    batch."""
    batch = data.get("jobs") if isinstance(data, dict) else None
    then = data.get("then") if isinstance(data, dict) else None
    return (batch, then, True) if isinstance(batch, list) else ([data], then, False)


def _kind(kinds: KindRules | None) -> Callable[[Any], str]:
    accepted: set[str] = set()  # a batch names a kind a thousand times: checked once

    def convert(value: Any) -> str:
        if isinstance(value, str) and value in accepted:
            return value
        if not isinstance(value, str) or not KIND_NAME.fullmatch(value):
            raise Invalid("must be a string of 1-100 lowercase letters, digits, _ . : -")
        if kinds is not None and value not in kinds.known:
            raise Invalid(f"unknown kind {value!r}; registered kinds: {', '.join(sorted(kinds.known))}")
        accepted.add(value)
        return value

    return convert


def _default_queue(kind: Any, config: Config, kinds: KindRules | None) -> str:
    """A submission naming no queue goes to its kind's queue (as its handler registered it), else the default."""
    if kinds is None or not isinstance(kind, str):
        return config.default_queue
    return kinds.queue_of(kind, config.default_queue)


def _job_ids(value: Any) -> tuple[int, ...]:
    """`depends_on`: distinct job ids (the jobs must exist; that is checked against the database). A job can only
    depend on jobs that exist before it, so no submission can close a cycle."""
    check = integer(1, MAX_ID)
    if not isinstance(value, list) or len(value) > MAX_DEPENDENCIES:
        raise Invalid(f"must be a list of at most {MAX_DEPENDENCIES} job ids")
    ids = []
    for index, item in enumerate(value):
        try:
            ids.append(check(item))
        except Invalid as exc:
            raise Invalid(str(exc), f"depends_on[{index}]") from None
    if len(set(ids)) != len(ids):
        raise Invalid("names a job more than once")
    return tuple(ids)


def _on_dependency_failure(value: Any) -> str:
    if value not in ON_DEPENDENCY_FAILURE:
        raise Invalid(f"must be one of {', '.join(ON_DEPENDENCY_FAILURE)}")
    return str(value)


def _payload(value: Any) -> Any:
    if not isinstance(value, dict):
        raise Invalid("must be a JSON object")
    return value


def _queue(config: Config) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if not isinstance(value, str) or value not in config.queues:
            raise Invalid(f"must be one of the configured queues: {', '.join(config.queues)}")
        return value

    return convert
