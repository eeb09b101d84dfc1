"""Opaque keyset page tokens: the last id seen plus a hash of the filters they were issued for."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from shared.errors import ValidationProblem, field_error


def filter_hash(filters: Mapping[str, Any]) -> str:
    canonical = orjson.dumps({k: str(v) for k, v in filters.items() if v is not None}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def encode_token(last_id: int, filters: Mapping[str, Any]) -> str:
    raw = orjson.dumps({"last": last_id, "f": filter_hash(filters)})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_token(token: str, filters: Mapping[str, Any]) -> int:
    """The last id of the previous page; 422 naming `page_token` if garbled or issued for other filters."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise _bad("is not a valid page token") from None
    last = data.get("last") if isinstance(data, dict) else None
    if not isinstance(last, int) or isinstance(last, bool) or last < 1:
        raise _bad("is not a valid page token")
    if data.get("f") != filter_hash(filters):
        raise _bad("was issued for different filters")
    return last


def _bad(message: str) -> ValidationProblem:
    return ValidationProblem([field_error("page_token", message)])
