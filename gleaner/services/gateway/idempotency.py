"""`Idempotency-Key`: a replay returns the same jobs and status; the same key with another body is a 422."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import asyncpg

from gleaner.shared.db import Connection
from gleaner.shared.errors import ValidationProblem, field_error

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
# printable ASCII: what a header carries unchanged (str.isprintable() also takes letters no header encodes alike)
KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")

LOOKUP = "SELECT request_hash, job_ids, status FROM idempotency_keys WHERE principal = $1 AND key = $2"
STORE = """
INSERT INTO idempotency_keys (key, principal, request_hash, job_ids, status) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (principal, key) DO NOTHING
RETURNING key
"""


@dataclass(frozen=True, slots=True)
class Recorded:
    job_ids: list[int]
    status: int


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"%s %s\n%s" % (method.encode(), path.encode(), body)).hexdigest()


def check_key(key: str) -> str:
    if KEY.fullmatch(key) is None:
        raise ValidationProblem([field_error(HEADER, f"must be 1-{MAX_KEY_LENGTH} printable ASCII characters")])
    return key


async def lookup(pool: asyncpg.Pool | Connection, principal: str, key: str, digest: str) -> Recorded | None:
    """The recorded outcome for this key, or None; 422 if the key was used with a different request."""
    row = await pool.fetchrow(LOOKUP, principal, key)
    if row is None:
        return None
    if row["request_hash"] != digest:
        raise ValidationProblem(
            [field_error(HEADER, "this key was already used with a different request")],
            detail="Idempotency-Key reused with a different request body",
        )
    return Recorded(list(row["job_ids"]), row["status"])


async def store(connection: Connection, principal: str, key: str, digest: str, recorded: Recorded) -> bool:
    """Record the outcome in the caller's transaction; False if a concurrent request recorded it first."""
    value = await connection.fetchval(STORE, key, principal, digest, recorded.job_ids, recorded.status)
    return value is not None
