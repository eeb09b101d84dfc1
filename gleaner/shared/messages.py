"""The job message envelope: the only code that knows Gleaner's wire format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from gleaner.shared.config import QUEUE_NAME
from gleaner.shared.errors import DecodeError
from gleaner.shared.kind_rules import KIND_NAME

VERSION = 1
CONTENT_TYPE = "application/json"
# Every decoded field stays within what PostgreSQL stores (bigint ids, int attempts) and what the code expects:
# a message outside them (forged, or from a broken producer) is poison, never a statement that fails forever.
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
MAX_REQUEST_ID = 128


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
        return orjson.dumps(body)

    @classmethod
    def decode(cls, body: bytes) -> JobMessage:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise DecodeError("body is not a JSON object")
        if data.get("v") != VERSION:
            raise DecodeError(f"unsupported envelope version {data.get('v')!r}")
        try:
            message = cls(
                job_id=_int(data, "id", low=1, high=MAX_BIGINT),
                attempt=_int(data, "attempt", low=1, high=MAX_INT),
                queue=_name(data, "queue", QUEUE_NAME),
                kind=_name(data, "kind", KIND_NAME),
                priority=_int(data, "priority", low=0, high=9, default=0),
                due_ms=_int(data, "due_ms", low=0, high=MAX_BIGINT, default=0),
                request_id=_request_id(data),
                generation=_int(data, "gen", low=0, high=MAX_INT, default=0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(str(exc)) from exc
        return message


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
