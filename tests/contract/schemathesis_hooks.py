"""Schemathesis hooks (SCHEMATHESIS_HOOKS): the rules the OpenAPI document states in words but JSON Schema cannot.

Schemathesis checks that every schema-valid request is accepted. A few of the gateway's rules relate two values or
ask for a value only the server knows, which no JSON Schema expresses; each is stated in the document's
descriptions. Right before each positive test case is sent (`before_call`, so values a stateful link put in are seen
too), these rules make the request obey them, so a 422 the gateway answers to a positive case is always a real
disagreement between the code and the document. They only replace valid values with other valid ones, and leave
negative cases alone (editing one would make schemathesis relabel it). The rules: JSON values without NUL and with
64-bit integers at any depth; retry_cap_s not below retry_base_s; soft_timeout_s below timeout_s; a payload the
kind's own check accepts (a public URL); a fan-out that keeps its jobs valid; a valid cron expression and timezone;
PATCH fields whose validity depends on the schedule's type; a site body's name equal to the path's; pause_max_s not
below pause_min_s; window_s or since; page tokens only as issued; one Idempotency-Key per body; a webhook URL the
fetch guard accepts; `depends_on` naming jobs that exist (emptied); job ids a link copied from a wider field. One
more keeps `GET /jobs/{id}?wait=` short: a long poll costs time, not coverage; and one more
ends every `GET /events` stream after `duration_s` = 0.2 (a stream without it runs until the client leaves).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import schemathesis
from schemathesis import Case
from schemathesis.hooks import HookContext

from gleaner.services.gateway.idempotency import HEADER as IDEMPOTENCY
from gleaner.services.gateway.idempotency import KEY

# the defaults of the test stack (GLEANER_DEFAULT_RETRY_BASE_S / _CAP_S are not set there)
DEFAULT_RETRY_BASE_S, DEFAULT_RETRY_CAP_S, DEFAULT_TIMEOUT_S = 1.0, 300.0, 300.0
MAX_WAIT_S, MAX_VALID_WAIT_S, MAX_STREAM_S = 0.2, 60.0, 86_400.0
MIN_INT, MAX_INT = -(2**63), 2**64 - 1
VALID_CRON = "*/5 * * * *"
# a zone in every timezone database (the document gives the names' shape, the server's database the names)
VALID_TIMEZONE = "Europe/Berlin"
# a payload each kind with a payload check accepts
GOOD_PAYLOADS: dict[str, dict[str, Any]] = {
    "http.fetch": {"url": "https://example.com/"},
    "scrape.pages": {"urls": ["https://example.com/a"]},
    # a delivery of a webhook that does not exist: the worker skips it
    "webhook.deliver": {"webhook_id": 1, "event": {"type": "job.failed"}},
}


def _positive(case: Case) -> bool:
    """A positive case as a whole (a hook must not touch a negative one: editing it would relabel it)."""
    return case.meta is not None and case.meta.generation.mode.is_positive


def _storable(value: Any) -> Any:
    """The rules of JSON values (JsonValue, stated in words): no NUL in a string or a key, integers within 64 bits,
    at any depth (a recursive schema could spell them out, but schemathesis cannot generate from one)."""
    if isinstance(value, str):
        return value.replace("\x00", "0")
    if isinstance(value, bool) or not isinstance(value, int | list | dict):
        return value
    if isinstance(value, int):
        return min(max(value, MIN_INT), MAX_INT)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return {_storable(key): _storable(item) for key, item in value.items()}


def _storable_text(value: Any) -> Any:
    """A JSON-content parameter travels as JSON text (or as the value, before it is serialized)."""
    if not isinstance(value, str):
        return _storable(value)
    try:
        return json.dumps(_storable(json.loads(value)))
    except ValueError:
        return value


def _job(job: Any) -> None:
    """A submission or template: retry cap not below its base, and a payload the kind's check accepts."""
    if not isinstance(job, dict):
        return
    base, cap = job.get("retry_base_s"), job.get("retry_cap_s")
    base = DEFAULT_RETRY_BASE_S if base is None else base
    cap = DEFAULT_RETRY_CAP_S if cap is None else cap
    if isinstance(base, int | float) and isinstance(cap, int | float) and cap < base:
        job["retry_cap_s"], job["retry_base_s"] = base, cap
    if job.get("depends_on"):
        job["depends_on"] = []  # ids of jobs that exist: only the server knows them
    timeout, soft = job.get("timeout_s"), job.get("soft_timeout_s")
    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    if isinstance(timeout, int | float) and isinstance(soft, int | float) and soft >= timeout:
        del job["soft_timeout_s"]  # optional: without it the job has no soft limit of its own
    kind = job.get("kind")
    if isinstance(kind, str) and kind in GOOD_PAYLOADS:
        job["payload"] = dict(GOOD_PAYLOADS[kind])
    _fan_out(job, kind)
    _job(job.get("then"))  # a template's callback


def _fan_out(job: dict[str, Any], kind: Any) -> None:
    """Each job a fan-out creates must pass as a submission: its values go into a member no kind checks (a
    maintenance payload takes no other member, and a URL kind's URL must stay the one given)."""
    fan_out = job.get("fan_out")
    if not isinstance(fan_out, dict):
        return
    if kind in GOOD_PAYLOADS or (isinstance(kind, str) and kind.startswith("maintenance.")):
        job.pop("fan_out")
    else:
        fan_out["key"] = "tag"


def _submission(case: Case) -> None:
    _job(case.body)


def _batch(case: Case) -> None:
    if isinstance(case.body, dict) and isinstance(case.body.get("jobs"), list):
        for job in case.body["jobs"]:
            _job(job)
        _job(case.body.get("then"))


def _schedule(case: Case) -> None:
    if not isinstance(case.body, dict):
        return
    if isinstance(case.body.get("cron"), str):
        case.body["cron"] = VALID_CRON
    if "timezone" in case.body:
        case.body["timezone"] = VALID_TIMEZONE
    _job(case.body.get("job"))


def _schedule_change(case: Case) -> None:
    """A change is laid over the current definition: fields whose validity depends on its type are set to values
    right for any type, and a null timing field (which would leave the schedule without timing) is dropped."""
    body = case.body
    if not isinstance(body, dict):
        return
    for key in ("type", *[k for k in ("interval_s", "cron", "at") if k in body and body[k] is None]):
        body.pop(key, None)
    if "jitter" in body:
        body["jitter"] = 0.1
    _schedule(case)


def _site(case: Case) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    body.pop("name", None)  # it must equal the name in the path
    hours = body.get("respectful_hours")
    if isinstance(hours, dict) and "timezone" in hours:
        hours["timezone"] = VALID_TIMEZONE
    low, high = body.get("pause_min_s"), body.get("pause_max_s")
    if isinstance(low, int | float) and isinstance(high, int | float) and high < low:
        body["pause_min_s"], body["pause_max_s"] = high, low


def _webhook(case: Case) -> None:
    """A URL the fetch client's guard accepts (the document says "http(s), public", not how to resolve it)."""
    if isinstance(case.body, dict) and "url" in case.body:
        case.body["url"] = GOOD_PAYLOADS["http.fetch"]["url"]


BODY_RULES: dict[str, Callable[[Case], None]] = {
    "POST /jobs": _submission,
    "POST /jobs/batch": _batch,
    "POST /schedules": _schedule,
    "PUT /schedules/{id}": _schedule,
    "PATCH /schedules/{id}": _schedule_change,
    "PUT /sites/{name}": _site,
    "POST /webhooks": _webhook,
}


def _query(case: Case) -> None:
    """An opaque page token is valid only as issued; `window_s` and `since` are alternatives."""
    query = case.query
    if not isinstance(query, dict):
        return
    query.pop("page_token", None)
    if "payload" in query:
        query["payload"] = _storable_text(query["payload"])
    if query.get("since") is not None:
        query.pop("window_s", None)
    for name in ("schedule_id", "parent_id"):  # a stateful link may copy a 0 from a field with a wider range
        if isinstance(query.get(name), int) and query[name] < 1:
            query.pop(name)


def _idempotency_key(case: Case) -> None:
    """A key is bound to the first body sent with it: each valid key is replaced by one of its own, so no case
    is a replay of another by chance (an invalid key is left to be refused)."""
    key = case.headers.get(IDEMPOTENCY) if case.headers is not None else None
    if isinstance(key, str) and KEY.fullmatch(key.strip(" ")):
        case.headers[IDEMPOTENCY] = f"k-{uuid.uuid4()}"


def _short(case: Case, name: str = "wait", longest_valid_s: float = MAX_VALID_WAIT_S) -> None:
    wait = case.query.get(name) if isinstance(case.query, dict) else None
    try:
        seconds = float(wait) if isinstance(wait, int | float | str) and not isinstance(wait, bool) else 0.0
    except ValueError:
        return
    if MAX_WAIT_S < seconds <= longest_valid_s:
        case.query[name] = MAX_WAIT_S


def _short_stream(case: Case) -> None:
    """A missing or longer `duration_s` becomes 0.2 s (a valid value for another valid one); an invalid one stays."""
    if not isinstance(case.query, dict):
        case.query = {}
    duration = case.query.get("duration_s")
    if duration is None:
        case.query["duration_s"] = MAX_WAIT_S
        return
    _short(case, "duration_s", MAX_STREAM_S)


@schemathesis.hook
def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    """Right before sending, so values a stateful link put in the request are seen too."""
    label = case.operation.label
    if label == "GET /jobs/{id}":
        _short(case)
    if label == "GET /events":
        _short_stream(case)
    if not _positive(case):
        return
    if isinstance(case.body, dict | list):
        case.body = _storable(case.body)
    if label in BODY_RULES:
        BODY_RULES[label](case)
    _query(case)
    _idempotency_key(case)
