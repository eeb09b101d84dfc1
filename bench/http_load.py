"""A lean HTTP/1.1 keep-alive client for the submit cases: fixed requests, responses read by Content-Length.

The benchmark's client shares the two cores with what it measures. aiohttp's client cost 140 µs of CPU a request in
the single-submit case (more than half of the gateway's own 265 µs), so it measured the client as much as the
gateway; this one writes prepared bytes and reads each response's status line, Content-Length and body, about a
tenth of that. It is for Gleaner's gateway (aiohttp answers with Content-Length), not a general client: a response
without one is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

HEAD_END = b"\r\n\r\n"
LENGTH = b"content-length:"


class ResponseError(Exception):
    """The server answered something this client does not read (or closed the connection)."""


def request_bytes(host: str, method: str, path: str, body: object, headers: dict[str, str]) -> bytes:
    """One request, encoded once: JSON `body` (orjson), keep-alive."""
    payload = orjson.dumps(body)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass(slots=True)
class Response:
    status: int
    body: bytes


def parse_head(head: bytes) -> tuple[int, int]:
    """(status, content length) of a response head (pure)."""
    first, _, rest = head.partition(b"\r\n")
    parts = first.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ResponseError(f"not an HTTP/1.x status line: {first[:80]!r}")
    for line in rest.split(b"\r\n"):
        if line[: len(LENGTH)].lower() == LENGTH:
            return int(parts[1]), int(line[len(LENGTH) :].strip())
    raise ResponseError("a response without Content-Length")


@dataclass(eq=False)
class Connection(asyncio.Protocol):
    """One connection, one request in flight at a time."""

    buffer: bytearray = field(default_factory=bytearray)
    transport: asyncio.Transport | None = None
    waiting: asyncio.Future[Response] | None = None
    head: tuple[int, int] | None = None  # (status, length) once the head of the current response is in
    body_at: int = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(ResponseError(f"connection closed: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            try:
                self.head = parse_head(bytes(self.buffer[:end]))
            except ResponseError as exc:
                self._fail(exc)
                return
            self.body_at = end + len(HEAD_END)
        status, length = self.head
        if len(self.buffer) - self.body_at < length:
            return
        body = bytes(self.buffer[self.body_at : self.body_at + length])
        del self.buffer[: self.body_at + length]
        self.head = None
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(Response(status, body))

    def _fail(self, exc: Exception) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    async def send(self, request: bytes) -> Response:
        assert self.transport is not None, "not connected"
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiting


async def connect(host: str, port: int) -> Connection:
    _, protocol = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return protocol


@contextlib.asynccontextmanager
async def connections(url: str, count: int) -> AsyncIterator[tuple[str, list[Connection]]]:
    """`count` connections to the server of `url` (its `Host`, and them), closed at the end."""
    split = urlsplit(url)
    assert split.hostname is not None and split.port is not None, f"no host and port in {url}"
    opened = [await connect(split.hostname, split.port) for _ in range(count)]
    try:
        yield split.netloc, opened
    finally:
        for connection in opened:
            if connection.transport is not None:
                connection.transport.close()
