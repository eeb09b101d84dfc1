"""The job message envelopes: the only code that knows Gleaner's wire format.

Version 1 carries one job; version 2 (`JobGroup`) carries several jobs of one queue and priority, so the broker
pays one persistent message for the group. Workers read both (`decode_jobs`): during a rolling upgrade old
gateways still publish version 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from gleaner.shared.config import QUEUE_NAME
from gleaner.shared.errors import DecodeError
from gleaner.shared.kind_rules import KIND_NAME
from gleaner.shared.slot_setters import slot_setters

VERSION = 1
GROUP_VERSION = 2
CONTENT_TYPE = "application/json"
# Every decoded field stays within what PostgreSQL stores (bigint ids, int attempts) and what the code expects:
# a message outside them (forged, or from a broken producer) is poison, never a statement that fails forever.
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
MAX_REQUEST_ID = 128
# what a worker accepts in one group (producers send GLEANER_GROUP_MAX_JOBS at most): a bigger group is poison
MAX_GROUP = 1000


@dataclass(frozen=True, slots=True)
class JobMessage:
    """Tells a worker to run attempt `attempt` of job `job_id`; the row holds everything else.

    The attempt travels here, never derived from `x-death`, which grows by one entry per delay level.
    `due_ms` is the epoch millisecond the message should be delivered (0 for "now"), so a worker can
    measure delay error and re-delay a message that arrived early.
    """

    job_id: int
    attempt: int
    queue: str
    kind: str
    priority: int = 0
    due_ms: int = 0
    request_id: str | None = None
    # bumped by a change of the waiting job (PATCH /jobs/{id}): a message of an older generation is stale
    generation: int = 0

    def encode(self) -> bytes:
        return orjson.dumps(self.fields())

    def fields(self) -> dict[str, Any]:
        """The version 1 body as a dict."""
        body: dict[str, Any] = {
            "v": VERSION,
            "id": self.job_id,
            "attempt": self.attempt,
            "queue": self.queue,
            "kind": self.kind,
            "priority": self.priority,
            "due_ms": self.due_ms,
        }
        if self.request_id is not None:
            body["request_id"] = self.request_id
        if self.generation:
            body["gen"] = self.generation
        return body

    @classmethod
    def decode(cls, body: bytes) -> JobMessage:
        data = _object(body)
        if data.get("v") != VERSION:
            raise DecodeError(f"unsupported envelope version {data.get('v')!r}")
        return cls.from_fields(data)

    @classmethod
    def from_fields(cls, data: dict[str, Any], group: JobMessage | None = None) -> JobMessage:
        """The message of a decoded version 1 body, or of a group member: `group` is a job of its group already
        decoded, whose queue, priority and due time (checked once for the group) it shares."""
        try:
            message = cls(
                job_id=_int(data, "id", low=1, high=MAX_BIGINT),
                attempt=_int(data, "attempt", low=1, high=MAX_INT),
                queue=group.queue if group else _name(data, "queue", QUEUE_NAME),
                kind=_name(data, "kind", KIND_NAME),
                priority=group.priority if group else _int(data, "priority", low=0, high=9, default=0),
                due_ms=group.due_ms if group else _int(data, "due_ms", low=0, high=MAX_BIGINT, default=0),
                request_id=_request_id(data),
                generation=_int(data, "gen", low=0, high=MAX_INT, default=0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(str(exc)) from exc
        return message

    def member(self) -> dict[str, Any]:
        """This job inside a group body: what the group does not say once for all (queue, priority, due time)."""
        return member_fields(self.job_id, self.attempt, self.kind, self.request_id, self.generation)


def member_fields(job_id: int, attempt: int, kind: str, request_id: str | None, generation: int) -> dict[str, Any]:
    """A job inside a group body (JobMessage.member, or a publisher's row without a JobMessage)."""
    body: dict[str, Any] = {"id": job_id, "attempt": attempt, "kind": kind}
    if request_id is not None:
        body["request_id"] = request_id
    if generation:
        body["gen"] = generation
    return body


@dataclass(frozen=True, slots=True)
class JobGroup:
    """Tells a worker to run several jobs of one queue and priority, each at its own attempt; one message.

    Each job is claimed, run and finished on its own terms (the group only saves broker work): a job already
    claimed or finished when the message is redelivered is skipped by the fenced claim like any stale message.
    """

    jobs: tuple[JobMessage, ...]

    def __post_init__(self) -> None:
        if not self.jobs:
            raise ValueError("a group holds at least one job")
        first = self.jobs[0]
        if any((j.queue, j.priority, j.due_ms) != (first.queue, first.priority, first.due_ms) for j in self.jobs):
            raise ValueError("the jobs of a group share their queue, priority and due time")

    @property
    def queue(self) -> str:
        return self.jobs[0].queue

    @property
    def priority(self) -> int:
        return self.jobs[0].priority

    def encode(self) -> bytes:
        first = self.jobs[0]
        return _group_body(first.queue, first.priority, first.due_ms, [job.member() for job in self.jobs])


@dataclass(frozen=True, slots=True)
class PackedGroup:
    """A group (version 2) encoded at once from its members' fields, as a publisher of rows sends it: the same body
    as a JobGroup of those jobs, without a JobMessage per job (making one and its member dict took 1.3 µs of the
    gateway's time a submitted job, timeit). The caller vouches that its jobs share the queue and priority."""

    queue: str
    priority: int
    size: int
    body: bytes

    @classmethod
    def of(cls, queue: str, priority: int, members: list[dict[str, Any]]) -> PackedGroup:
        """A group due now of `members` (each from `member_fields`)."""
        if not members:
            raise ValueError("a group holds at least one job")
        return cls(queue, priority, len(members), _group_body(queue, priority, 0, members))

    def encode(self) -> bytes:
        return self.body


def _group_body(queue: str, priority: int, due_ms: int, members: list[dict[str, Any]]) -> bytes:
    body: dict[str, Any] = {"v": GROUP_VERSION, "queue": queue, "priority": priority}
    if due_ms:
        body["due_ms"] = due_ms
    body["jobs"] = members
    return orjson.dumps(body)


# what a publisher sends: one job, or a group
Envelope = JobMessage | JobGroup | PackedGroup


def headers_of(envelope: Envelope) -> dict[str, int | str]:
    """The AMQP headers (for people reading a queue in the management UI; workers read the body only)."""
    if isinstance(envelope, JobGroup):
        return {"jobs": len(envelope.jobs)}
    if isinstance(envelope, PackedGroup):
        return {"jobs": envelope.size}
    headers: dict[str, int | str] = {"job_id": envelope.job_id, "attempt": envelope.attempt}
    if envelope.request_id:
        headers["request_id"] = envelope.request_id
    return headers


def decode_jobs(body: bytes) -> tuple[JobMessage, ...]:
    """The jobs of a message of either version; raises DecodeError for anything else (poison)."""
    data = _object(body)
    version = data.get("v")
    if version == VERSION:
        return (JobMessage.from_fields(data),)
    if version != GROUP_VERSION:
        raise DecodeError(f"unsupported envelope version {version!r}")
    members = data.get("jobs")
    if not isinstance(members, list) or not 0 < len(members) <= MAX_GROUP:
        raise DecodeError(f"field 'jobs' must be a list of 1 to {MAX_GROUP} jobs")
    shared = {"queue": data.get("queue"), "priority": data.get("priority", 0), "due_ms": data.get("due_ms", 0)}
    jobs: list[JobMessage] = []
    for member in members:
        if not isinstance(member, dict) or not member.keys().isdisjoint(shared):
            raise DecodeError("each job of a group is an object without queue, priority or due_ms")
        jobs.append(_member(member, jobs[0]) if jobs else JobMessage.from_fields({**member, **shared}))
    return tuple(jobs)


# the fields `_member` sets, in declaration order (`slot_setters` checks it)
MESSAGE_FIELDS = ("job_id", "attempt", "queue", "kind", "priority", "due_ms", "request_id", "generation")
_SET_ID, _SET_ATTEMPT, _SET_QUEUE, _SET_KIND, _SET_PRIORITY, _SET_DUE_MS, _SET_REQUEST_ID, _SET_GENERATION = (
    slot_setters(JobMessage, MESSAGE_FIELDS)
)


def _member(data: dict[str, Any], first: JobMessage) -> JobMessage:
    """A job of a group after its first, as `JobMessage.from_fields(data, first)` makes it, faster: the usual member
    (the kind and request id of the first job, valid integers) is checked in one expression and its fields are set
    through the slots (a frozen dataclass's __init__ goes through object.__setattr__): 3.0 -> 1.4 us a member
    (timeit, this box). Anything else takes the full checks, which name what is wrong."""
    job_id, attempt, generation = data.get("id"), data.get("attempt"), data.get("gen", 0)
    if not (
        type(job_id) is int
        and 0 < job_id <= MAX_BIGINT
        and type(attempt) is int
        and 0 < attempt <= MAX_INT
        and type(generation) is int
        and 0 <= generation <= MAX_INT
        and data.get("kind") == first.kind
        and data.get("request_id") == first.request_id
    ):
        return JobMessage.from_fields(data, first)
    message: JobMessage = object.__new__(JobMessage)
    _SET_ID(message, job_id)
    _SET_ATTEMPT(message, attempt)
    _SET_QUEUE(message, first.queue)
    _SET_KIND(message, first.kind)
    _SET_PRIORITY(message, first.priority)
    _SET_DUE_MS(message, first.due_ms)
    _SET_REQUEST_ID(message, first.request_id)
    _SET_GENERATION(message, generation)
    return message


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError("body is not a JSON object")
    return data


def _int(data: dict[str, Any], name: str, *, low: int, high: int, default: int | None = None) -> int:
    value = data.get(name, default)
    if value is None:
        raise KeyError(f"missing field {name!r}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"field {name!r} must be an integer")
    if not low <= value <= high:
        raise ValueError(f"field {name!r} out of range: must be from {low} to {high}")
    return value


def _name(data: dict[str, Any], name: str, rule: re.Pattern[str]) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise ValueError(f"field {name!r} must match {rule.pattern}")
    return value


def _request_id(data: dict[str, Any]) -> str | None:
    value = data.get("request_id")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_REQUEST_ID or not value.isprintable():
        raise ValueError(f"field 'request_id' must be 1-{MAX_REQUEST_ID} printable characters")
    return value
