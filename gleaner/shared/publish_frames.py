"""AMQP 0-9-1 `basic.publish` frames encoded directly: a batch of job messages as one run of bytes.

aiormq builds a pamqp object per frame and marshals it field by field; for the small, fixed-shaped job
messages that was a third of the gateway's publishing time. This writes the same bytes with `struct`,
keeping the method frame per (exchange, routing key) ready-made. Only what job messages need is here.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_END = b"\xce"
BASIC_CLASS = 60
BASIC_PUBLISH = 40
PERSISTENT = 2

# property flags of the Basic class, in the order the properties are written
_CONTENT_TYPE = 1 << 15
_HEADERS = 1 << 13
_DELIVERY_MODE = 1 << 12
_PRIORITY = 1 << 11
_MESSAGE_ID = 1 << 7

_FRAME_START = struct.Struct(">BHI")
_HEADER_START = struct.Struct(">HHQH")
_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")

HeaderValue = int | str


def shortstr(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(f"short string longer than 255 bytes: {value[:40]!r}…")
    return bytes((len(raw),)) + raw


def table(fields: Mapping[str, HeaderValue]) -> bytes:
    """A field table of 64-bit signed integers ('l') and long strings ('S')."""
    parts: list[bytes] = []
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"header {name!r}: only int and str values are encoded, not {type(value).__name__}")
        if isinstance(value, int):
            parts.append(shortstr(name) + b"l" + _INT64.pack(value))
        else:
            raw = value.encode()
            parts.append(shortstr(name) + b"S" + _UINT32.pack(len(raw)) + raw)
    encoded = b"".join(parts)
    return _UINT32.pack(len(encoded)) + encoded


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _FRAME_START.pack(kind, channel, len(payload)) + payload + FRAME_END


class PublishEncoder:
    """Encodes persistent messages with one content type for one channel; bodies split at `max_body`."""

    def __init__(self, channel: int, max_body: int, content_type: str) -> None:
        if max_body < 1:
            raise ValueError("max_body must be positive")
        self.channel = channel
        self.max_body = max_body
        self._content_type = shortstr(content_type)
        self._methods: dict[tuple[str, str, bool], bytes] = {}

    def method_frame(self, exchange: str, routing_key: str, mandatory: bool) -> bytes:
        key = (exchange, routing_key, mandatory)
        cached = self._methods.get(key)
        if cached is None:
            payload = (
                struct.pack(">HHH", BASIC_CLASS, BASIC_PUBLISH, 0)
                + shortstr(exchange)
                + shortstr(routing_key)
                + bytes((1 if mandatory else 0,))
            )
            cached = self._methods[key] = frame(FRAME_METHOD, self.channel, payload)
        return cached

    def encode(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        priority: int,
        headers: Mapping[str, HeaderValue],
        message_id: str,
        mandatory: bool = True,
    ) -> bytes:
        """The method, content header and body frames of one message."""
        if not 0 <= priority <= 255:
            raise ValueError(f"priority must be 0..255, not {priority}")
        flags = _CONTENT_TYPE | _HEADERS | _DELIVERY_MODE | _PRIORITY | _MESSAGE_ID
        header = b"".join(
            (
                _HEADER_START.pack(BASIC_CLASS, 0, len(body), flags),
                self._content_type,
                table(headers),
                bytes((PERSISTENT, priority)),
                shortstr(message_id),
            )
        )
        parts = [self.method_frame(exchange, routing_key, mandatory), frame(FRAME_HEADER, self.channel, header)]
        for start in range(0, len(body), self.max_body):
            parts.append(frame(FRAME_BODY, self.channel, body[start : start + self.max_body]))
        return b"".join(parts)
