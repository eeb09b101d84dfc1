"""Reading `GET /events` (Server-Sent Events) for both clients: the query, the frames, when to reconnect. Pure.

The gateway sends `id:`, `event:` and `data:` lines per event, a `: keep-alive` comment when quiet, `retry:`
(milliseconds before reconnecting), and notices: `dropped` (this client fell behind) and `closing` (the gateway is
stopping) end the stream and ask for a reconnect; `resync` opens a stream that could not resume.
"""

from __future__ import annotations

import orjson

from gleaner import _calls, _decode
from gleaner.errors import UnexpectedResponse
from gleaner.inputs import EventFilter
from gleaner.json_types import Json
from gleaner.models import Event

PATH = "/events"
# the server ends the stream after these and expects the client back (with Last-Event-ID)
ENDINGS = frozenset({"dropped", "closing"})
RESYNC = "resync"
DEFAULT_RETRY_S = 2.0
MAX_RETRY_S = 60.0


def event_params(filters: EventFilter, duration_s: float | None) -> _calls.Params:
    """Each filter value as its own query parameter (`?kind=a&kind=b`)."""
    params = [(name, str(value)) for name, values in _calls.filter_lists(filters).items() for value in values]
    if duration_s is not None:
        params.append(("duration_s", str(duration_s)))
    return tuple(params)


class EventStream:
    """One iteration of `client.events()`: the request to send (again), the frames read so far, and whether a
    stream that ended is resumed. `last_id` is the id of the last event yielded (sent as `Last-Event-ID`)."""

    def __init__(self, filters: EventFilter, last_event_id: str | None, duration_s: float | None) -> None:
        # read like any GET: repeated after an unknown outcome, errors read from the answer's JSON
        self.call: _calls.Call[None] = _calls.Call(
            "GET", PATH, _calls.nothing, event_params(filters, duration_s), repeatable=True
        )
        self.last_id = last_event_id
        self.retry_s = DEFAULT_RETRY_S
        self._duration_s = duration_s
        self._ending: str | None = None
        self._id: str | None = None
        self._type: str | None = None
        self._data: list[str] = []

    def headers(self) -> dict[str, str]:
        resume = {"Last-Event-ID": self.last_id} if self.last_id is not None else {}
        return {"Accept": "text/event-stream", "Cache-Control": "no-store", **resume}

    def feed(self, line: str) -> Event | None:
        """Take one line of the stream; an event when the line completes one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._id = value
        elif name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "retry" and value.isdigit():
            self.retry_s = min(MAX_RETRY_S, int(value) / 1000)
        return None

    def resumes(self) -> bool:
        """After the server ended a stream: reconnect, unless it ended because the asked `duration_s` passed."""
        ending, self._ending = self._ending, None
        self._id, self._type, self._data = None, None, []
        return ending in ENDINGS or self._duration_s is None

    def _dispatch(self) -> Event | None:
        frame_id, kind, data = self._id, self._type, "\n".join(self._data)
        self._id, self._type, self._data = None, None, []
        if not data:
            return None
        if kind in ENDINGS:
            self._ending = kind
            return None
        try:
            decoded: Json = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UnexpectedResponse(f"an event's data is not JSON: {data[:200]!r}") from None
        if not isinstance(decoded, dict):
            raise UnexpectedResponse(f"an event's data is not a JSON object: {data[:200]!r}")
        if kind == RESYNC:
            detail = decoded.get("detail")
            return Event(type=RESYNC, detail=detail if isinstance(detail, str) else None, raw=decoded)
        if frame_id is None:
            raise UnexpectedResponse(f"an event without an id: {data[:200]!r}")
        event = _decode.decode(Event, {**decoded, "id": frame_id}, "event")
        self.last_id = frame_id
        return event
