"""The job message envelope: the only code that knows Gleaner's wire format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shared.errors import DecodeError

VERSION = 1
CONTENT_TYPE = "application/json"


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
                job_id=_int(data, "id", low=1),
                attempt=_int(data, "attempt", low=1),
                queue=_str(data, "queue"),
                kind=_str(data, "kind"),
                priority=_int(data, "priority", low=0, high=9, default=0),
                due_ms=_int(data, "due_ms", low=0, default=0),
                request_id=_optional_str(data, "request_id"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(str(exc)) from exc
        return message


def _int(data: dict[str, Any], name: str, *, low: int, high: int | None = None, default: int | None = None) -> int:
    value = data.get(name, default)
    if value is None:
        raise KeyError(f"missing field {name!r}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"field {name!r} must be an integer")
    if value < low or (high is not None and value > high):
        raise ValueError(f"field {name!r} out of range: {value}")
    return value


def _str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise TypeError(f"field {name!r} must be a non-empty string")
    return value


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"field {name!r} must be a string")
    return value
