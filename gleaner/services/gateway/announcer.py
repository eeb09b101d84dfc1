"""Events of what requests committed, gathered per route over one turn of the event loop and published as one
message: concurrent single submissions (committed together by the insert lanes) cost one event message, not one
each."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gleaner.shared import events
from gleaner.shared.amqp import Broker
from gleaner.shared.ops import spawn

# events in one message at most (a batch submission's 1,000 stay one message)
MAX_EVENTS = 1000


class Announcer:
    """`add(route, events)` after a commit; what this loop turn added goes out together, in the background."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._pending: dict[str, list[events.Event]] = {}

    def add(self, route: str, happened: Sequence[events.Event]) -> None:
        pending = self._pending.get(route)
        if pending is None:
            pending = self._pending[route] = []
            asyncio.get_running_loop().call_soon(self._flush, route)
        pending.extend(happened)

    def _flush(self, route: str) -> None:
        pending = self._pending.pop(route, [])
        for start in range(0, len(pending), MAX_EVENTS):
            body = events.encode(pending[start : start + MAX_EVENTS])
            spawn(self._broker.publish_event(route, body), route)
