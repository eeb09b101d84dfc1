"""The services' codecs: timestamps through the memoized timestamptz codec are exactly asyncpg's own, both ways,
and JSON values go through binary jsonb as they went through text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import orjson

from gleaner.shared.db import init_connection

READ = """SELECT v FROM unnest(ARRAY['2026-12-01 09:14:52.578509+00', '2000-01-01 00:00:00+00',
    '1999-12-31 23:59:59.999999+00', '0001-01-01 00:00:00+00', '9999-12-31 23:59:59.999999+00', '1970-01-01+00',
    'infinity', '-infinity']::timestamptz[]) AS v"""
WRITTEN = [
    datetime(2026, 12, 1, 9, 14, 52, 578509, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 12, 1, 9, 14, 52),  # naive: local time
    date(2026, 12, 1),  # midnight local time
    datetime.max,
    datetime.min,
]


async def test_timestamps_are_read_and_written_as_asyncpg_itself_does(database_url: str) -> None:
    plain = await asyncpg.connect(database_url)
    memoized = await asyncpg.connect(database_url)
    try:
        await init_connection(memoized)
        assert await memoized.fetch(READ) == await plain.fetch(READ)
        read = [r["v"] for r in await memoized.fetch(READ)]
        assert [type(v) for v in read] == [datetime] * 8 and read[0].tzinfo is UTC and read[-1] == datetime.min
        for value in WRITTEN:
            as_text = "SELECT $1::timestamptz::text"
            assert await memoized.fetchval(as_text, value) == await plain.fetchval(as_text, value), value
        many = "SELECT unnest($1::timestamptz[])::text"
        assert await memoized.fetch(many, [WRITTEN[0], None]) == await plain.fetch(many, [WRITTEN[0], None])
    finally:
        await plain.close()
        await memoized.close()


async def refusal(connection: asyncpg.Connection, query: str, value: object) -> tuple[type, str]:
    """The exception a query with `value` raises (its type and message)."""
    try:
        await connection.fetchval(query, value)
    except Exception as exc:  # noqa: BLE001 - compared by the caller
        return type(exc), str(exc)
    raise AssertionError(f"{query} took {value!r}")


async def test_a_value_that_is_no_timestamp_is_refused_as_asyncpg_refuses_it(database_url: str) -> None:
    plain = await asyncpg.connect(database_url)
    memoized = await asyncpg.connect(database_url)
    try:
        await init_connection(memoized)
        query = "SELECT $1::timestamptz"
        assert await refusal(memoized, query, "2026-01-01") == await refusal(plain, query, "2026-01-01")
    finally:
        await plain.close()
        await memoized.close()


JSON_VALUES = [{"a": [1, 2.5, None, True], "é": 'ü\n"', "z": {}}, [], "text", 0, None, {"big": 2**63 - 1}]


async def test_json_values_are_written_and_read_through_binary_jsonb_as_through_text(database_url: str) -> None:
    as_text = await asyncpg.connect(database_url)
    binary = await asyncpg.connect(database_url)
    try:
        for name in ("json", "jsonb"):
            await as_text.set_type_codec(
                name, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
            )
        await init_connection(binary)
        for value in JSON_VALUES:
            for query in ("SELECT $1::jsonb", "SELECT $1::jsonb::text", "SELECT $1::json", "SELECT jsonb_typeof($1)"):
                assert await binary.fetchval(query, value) == await as_text.fetchval(query, value), (query, value)
        many = "SELECT v, v::text FROM unnest($1::jsonb[]) AS v"
        payloads = [v for v in JSON_VALUES if isinstance(v, dict)] + [None]  # a list element would be a dimension
        assert await binary.fetch(many, payloads) == await as_text.fetch(many, payloads)
        nul = {"nul": "\u0000"}
        assert await refusal(binary, "SELECT $1::jsonb", nul) == await refusal(as_text, "SELECT $1::jsonb", nul)
    finally:
        await as_text.close()
        await binary.close()
