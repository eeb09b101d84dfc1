"""Opaque keyset page tokens: the last id seen and a hash of the filters they were issued for, signed.

The signature (HMAC-SHA256 with a key every replica reads from `gateway_secrets`) makes a token unforgeable, so
a page token can only carry an id this API handed out; its fields are bounded all the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson

from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.field_checks import MAX_ID

LOAD_KEY = "SELECT secret FROM gateway_secrets WHERE name = 'page_tokens'"
MAC_BYTES = 16


def filter_hash(filters: Mapping[str, Any]) -> str:
    canonical = orjson.dumps({k: str(v) for k, v in filters.items() if v is not None}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


class PageTokens:
    """Issues and checks page tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    async def load(cls, pool: asyncpg.Pool) -> PageTokens:
        key: bytes | None = await pool.fetchval(LOAD_KEY)
        if key is None:
            raise RuntimeError("no page token key in gateway_secrets: run `gleaner migrate`")
        return cls(key)

    def encode(self, last_id: int, filters: Mapping[str, Any]) -> str:
        body = orjson.dumps({"last": last_id, "f": filter_hash(filters)})
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def decode(self, token: str, filters: Mapping[str, Any]) -> int:
        """The last id of the previous page; 422 naming `page_token` if garbled, forged or issued for other filters."""
        body_text, _, mac_text = token.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (binascii.Error, ValueError):
            raise _bad("is not a valid page token") from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise _bad("is not a page token this API issued")
        data = orjson.loads(body)
        last = data.get("last") if isinstance(data, dict) else None
        if not isinstance(last, int) or isinstance(last, bool) or not 1 <= last <= MAX_ID:
            raise _bad("is not a valid page token")
        if data.get("f") != filter_hash(filters):
            raise _bad("was issued for different filters")
        return last

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))


def _bad(message: str) -> ValidationProblem:
    return ValidationProblem([field_error("page_token", message)])
