"""A minimal Server-Sent Events reader over a plain aiohttp response, for tests of `GET /events`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tests.support.contract import contract

# what the gateway says about the stream itself, not a job or schedule event
NOTICES = frozenset({"resync", "dropped", "closing"})
EVENT_SCHEMA = "#/components/schemas/Event"


@dataclass(slots=True)
class Message:
    """One SSE block: its fields, or the comment it was (`: keep-alive`)."""

    event: str = "message"
    id: str | None = None
    data: str = ""
    comment: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data)


@dataclass(slots=True)
class Stream:
    response: aiohttp.ClientResponse
    seen: list[Message] = field(default_factory=list)

    async def next(self, timeout_s: float = 10) -> Message:
        """The next block (an event or a comment); TimeoutError if none comes in time."""
        async with asyncio.timeout(timeout_s):
            message = Message()
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("the stream ended")
                line = raw.decode().rstrip("\n")
                if line == "":
                    if message.comment is not None or message.data or message.event != "message":
                        self.seen.append(message)
                        return message
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    message.comment = value
                elif name in ("event", "id"):
                    setattr(message, name, value)
                elif name == "data":
                    message.data += value

    async def event(self, timeout_s: float = 10) -> Message:
        """The next event, skipping comments; a job or schedule event is checked against the API's `Event`."""
        while True:
            message = await self.next(timeout_s)
            if message.comment is None:
                if message.event not in NOTICES:
                    contract().check_schema(EVENT_SCHEMA, message.json(), f"event {message.id}")
                return message

    async def events_until(self, done: Any, timeout_s: float = 15) -> list[Message]:
        """Events until `done(message)` is true (that one included)."""
        out: list[Message] = []
        async with asyncio.timeout(timeout_s):
            while True:
                message = await self.event(timeout_s)
                out.append(message)
                if done(message):
                    return out
