"""The console's query and form parameters, checked before anything is asked of the API (pure: no I/O).

Each page and action names the parameters it takes and how each is read; anything else is ignored, a bad value is
a 422 naming it. Values the API checks again (filters, timestamps) are only bounded here."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.field_checks import Invalid, query_boolean, query_integer

Check = Callable[[str], Any]
STATES = ("scheduled", "queued", "running", "retrying", "blocked", "succeeded", "partial", "failed", "cancelled")
# where a sign-in may send the browser back to: a console page of this site, never another origin
NEXT_PAGE = re.compile(r"/console/[A-Za-z0-9_\-./?=&%+:]{0,500}")
PAYLOAD_PARAM = "payload."
MAX_TEXT = 200
MAX_JSON_TEXT = 64 * 1024
# what PATCH /schedules/{id} takes, so the edit form starts from the schedule as it is
SCHEDULE_FIELDS = (
    "name",
    "type",
    "interval_s",
    "jitter",
    "cron",
    "timezone",
    "at",
    "job",
    "misfire",
    "overlap",
    "misfire_grace_s",
    "enabled",
)


def bounded(max_length: int = MAX_TEXT) -> Check:
    def check(raw: str) -> str:
        if len(raw) > max_length:
            raise Invalid(f"must be at most {max_length} characters")
        return raw

    return check


def one_of(choices: tuple[str, ...]) -> Check:
    def check(raw: str) -> str:
        if raw not in choices:
            raise Invalid(f"must be one of {', '.join(choices)}")
        return raw

    return check


def json_object(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_JSON_TEXT:
        raise Invalid(f"must be at most {MAX_JSON_TEXT} characters")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid("must be a JSON object") from None
    if not isinstance(value, dict):
        raise Invalid("must be a JSON object")
    return value


def next_page(raw: str) -> str:
    if NEXT_PAGE.fullmatch(raw) is None or "//" in raw or ".." in raw:
        raise Invalid("must be a console page")
    return raw


JOB_FILTERS: dict[str, Check] = {
    "state": one_of(STATES),
    "kind": bounded(),
    "queue": bounded(),
    "site": bounded(),
    "schedule_id": bounded(20),
    "created_after": bounded(40),
    "created_before": bounded(40),
    "updated_after": bounded(40),
    "payload": bounded(4000),
    "page_size": query_integer(1, 500),
    "page_token": bounded(1000),
}
LETTER_FILTERS: dict[str, Check] = {
    "kind": bounded(),
    "queue": bounded(),
    "type": one_of(("job", "message")),
    "limit": query_integer(1, 1000),
    "resolved": query_boolean,
}
BULK_REQUEUE: dict[str, Check] = {
    "kind": bounded(),
    "queue": bounded(),
    "error_class": bounded(),
    "limit": query_integer(1, 10_000),
}
PREVIEW: dict[str, Check] = {"count": query_integer(1, 100)}
SCHEDULE_PAGE: dict[str, Check] = {"after_id": query_integer(0, 2**63 - 1)}
NOTE: dict[str, Check] = {"note": bounded(1000)}
REASON: dict[str, Check] = {"reason": bounded(1000)}
EDIT: dict[str, Check] = {"definition": json_object}
SIGN_IN: dict[str, Check] = {"key": bounded(512), "next": next_page}
NEXT: dict[str, Check] = {"next": next_page}


def read(params: Mapping[str, str], spec: Mapping[str, Check]) -> dict[str, Any]:
    """The named parameters that are present and not empty, converted; 422 naming every bad one."""
    values: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for name, check in spec.items():
        raw = params.get(name, "").strip()
        if not raw:
            continue
        try:
            values[name] = check(raw)
        except Invalid as exc:
            errors.append(field_error(name, str(exc)))
    if errors:
        raise ValidationProblem(errors)
    return values


def job_filters(params: Mapping[str, str]) -> dict[str, str]:
    """GET /jobs's filters as the API takes them: the known ones plus `payload.<key>=<text>` pairs."""
    values = {name: str(value) for name, value in read(params, JOB_FILTERS).items()}
    extra = {name: value for name, value in params.items() if name.startswith(PAYLOAD_PARAM) and value}
    bad = [name for name, value in extra.items() if len(name) > MAX_TEXT or len(value) > MAX_TEXT]
    if bad or len(extra) > 20:
        raise ValidationProblem([field_error(name, "too long, or too many payload filters") for name in bad or extra])
    return values | extra
