"""asyncpg pool with orjson codecs for json and jsonb (binary), and one for timestamptz that reuses a repeated value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from gleaner.shared.config import Config
from gleaner.shared.startup import database_error

Pool = asyncpg.Pool
Record = asyncpg.Record
# what `pool.acquire()` and `asyncpg.connect()` give: both run queries
Connection = asyncpg.Connection | PoolConnectionProxy


# Plan every execution with its parameters. The worker's statements join `unnest($n)` arrays to `jobs`; a cached
# generic plan (PostgreSQL switches after five runs) guesses the arrays' sizes and keeps whatever it chose while
# the table was small or unanalyzed (0.3-0.7 ms a row instead of 0.02 in the e2e benchmark). Not for the
# gateway's request path: planning each group-committed insert added 10-20 ms to its p99.
CUSTOM_PLANS = {"plan_cache_mode": "force_custom_plan"}


async def keep_session(connection: asyncpg.Connection) -> None:
    """Release a pooled connection without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).

    For pools whose statements leave no session state behind (no LISTEN, advisory locks or SET; transactions
    are still rolled back by asyncpg): the reset was a round trip per acquire, 1,600 of them in a 20,000-job
    e2e run.
    """


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# timestamptz on the wire: microseconds since 2000-01-01 UTC, with two values for +-infinity
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_PG_INFINITY = 2**63 - 1
_PG_NEGATIVE_INFINITY = -(2**63)


def _instants() -> Callable[[tuple[int]], datetime]:
    """A connection's timestamptz decoder: a value as asyncpg decodes it (an aware UTC datetime; +-infinity as the
    naive datetime.max/min), the last one made kept for the next value if it is the same.

    asyncpg makes a datetime for each value by adding a timedelta (0.5 µs), and the rows of one statement share
    their `created_at`, `updated_at` and mostly `run_at`: a 1,000-row SELECT of three such columns took 1.73 ->
    0.46 µs of client CPU a row. The price, a Python call per value: a column of all different instants 0.74 ->
    0.98 µs a row (timeit, /tmp/gwbatch/micro7.py).
    """
    last_value: tuple[int] | None = None
    last_made = datetime.min

    def decode(value: tuple[int]) -> datetime:
        nonlocal last_value, last_made
        if value != last_value:
            (microseconds,) = value
            if microseconds == _PG_INFINITY:
                last_made = datetime.max
            elif microseconds == _PG_NEGATIVE_INFINITY:
                last_made = datetime.min
            else:
                last_made = _PG_EPOCH + timedelta(microseconds=microseconds)
            last_value = value
        return last_made

    return decode


def _instant_tuple(value: Any) -> tuple[int]:
    """A date or datetime as asyncpg encodes a timestamptz: a date is midnight local time, a naive datetime local
    time, datetime.max/min are +-infinity."""
    if not isinstance(value, datetime):
        if not isinstance(value, date):
            raise TypeError(f"expected a datetime.date or datetime.datetime instance, got {type(value).__name__!r}")
        value = datetime(value.year, value.month, value.day, tzinfo=datetime.now(UTC).astimezone().tzinfo)
    if value == datetime.max:
        return (_PG_INFINITY,)
    if value == datetime.min:
        return (_PG_NEGATIVE_INFINITY,)
    delta = value.astimezone(UTC) - _PG_EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,)


def _jsonb_bytes(value: Any) -> bytes:
    """jsonb in binary: a version byte, then the JSON text. Without the text format's str in between (orjson writes
    bytes, asyncpg encoded them again): 1.0 -> 0.64 µs a payload of a 1,000-row insert, timeit."""
    return b"\x01" + orjson.dumps(value)


def _jsonb_value(data: bytes) -> Any:
    return orjson.loads(memoryview(data)[1:])


async def init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("json", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")
    await connection.set_type_codec(
        "jsonb", encoder=_jsonb_bytes, decoder=_jsonb_value, schema="pg_catalog", format="binary"
    )
    await connection.set_type_codec(
        "timestamptz", encoder=_instant_tuple, decoder=_instants(), schema="pg_catalog", format="tuple"
    )


async def create_pool(
    config: Config,
    *,
    min_size: int = 2,
    max_size: int = 10,
    name: str = "gleaner",
    settings: dict[str, str] | None = None,
    reset_session: bool = True,
) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            config.database_url,
            min_size=min_size,
            max_size=max_size,
            init=init_connection,
            reset=None if reset_session else keep_session,
            server_settings={"application_name": name, **(settings or {})},
        )
    except (OSError, asyncpg.PostgresError) as exc:
        explained = database_error(exc, config.database_url)
        if explained is None:
            raise
        raise explained from None
    assert pool is not None
    return pool


# Lock order. Every statement that writes several `jobs` rows takes them in ascending id order, so two such statements
# never wait for each other in a cycle. Most lock all of them first, in a CTE named `locked` (`SELECT id … ORDER BY
# id FOR NO KEY UPDATE`: PostgreSQL locks rows as they leave the sort or the id-ordered index scan, whatever plan the
# rest of the statement gets), and the UPDATE reads the CTE through this one-time filter (always true), which
# PostgreSQL evaluates before the UPDATE reads its first row; the UPDATE then meets only rows the statement holds
# already. The worker's claim and finish, which run for every job, skip that second write of each row: their UPDATE is
# driven by its ids sorted in a MATERIALIZED CTE and reaches `jobs` by primary key only (a nested loop, see
# gleaner.services.worker.claims), so it locks each row as it writes it, in the CTE's order.
# A statement that skips locked rows (SKIP LOCKED) never waits and needs no order, but must write only the rows it
# locked. A rare race left over (a row changing twice during the statement) ends in a deadlock error, which the
# group writers retry (see CONFLICT below).
ORDERED_LOCKS = "(SELECT count(*) FROM locked) >= 0"

# How a failed grouped statement is handled (`failure_kind`): retried whole after a short pause (a deadlock or
# serialization failure: nothing was written and the same statement succeeds on a second try), split so only the
# rows at fault fail (a value PostgreSQL or asyncpg refuses), or failed for every caller (the connection or the
# database is gone; no split would help).
CONFLICT = "conflict"
ROW = "row"
TRANSIENT = "transient"
# SQLSTATEs of a lost race between transactions
CONFLICT_STATES = frozenset({"40P01", "40001"})
# SQLSTATE classes a single row's values can cause: data exceptions (22: a NUL in text or jsonb, a number or a
# time out of range) and integrity violations (23); 54000 is an index row too large
ROW_STATE_CLASSES = frozenset({"22", "23"})
ROW_STATES = frozenset({"54000"})


def failure_kind(error: BaseException) -> str:
    """CONFLICT, ROW or TRANSIENT (see above) for an exception a grouped statement raised."""
    if isinstance(error, asyncpg.PostgresError):
        state = error.sqlstate or ""
        if state in CONFLICT_STATES:
            return CONFLICT
        if state[:2] in ROW_STATE_CLASSES or state in ROW_STATES:
            return ROW
        return TRANSIENT
    # asyncpg's client-side DataError (a value it cannot encode, such as an int past bigint) is a ValueError
    if isinstance(error, (ValueError, TypeError, ArithmeticError)):
        return ROW
    return TRANSIENT


# SQLSTATE classes of a database that cannot answer now: connection exceptions (08), insufficient resources
# (53: too many connections), operator intervention (57: shutdown, starting up)
UNAVAILABLE_STATE_CLASSES = frozenset({"08", "53", "57"})


def unavailable(error: BaseException) -> bool:
    """Whether an exception says PostgreSQL is out of reach for now (so the same write may work later)."""
    if isinstance(error, asyncpg.PostgresError):
        return (error.sqlstate or "")[:2] in UNAVAILABLE_STATE_CLASSES
    if isinstance(error, ValueError):  # asyncpg's client-side DataError is an InterfaceError too
        return False
    return isinstance(error, (OSError, TimeoutError, asyncpg.InterfaceError))
