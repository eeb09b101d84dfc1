"""The bench's lean HTTP client reads responses by their head and Content-Length (pure: no socket)."""

from __future__ import annotations

import asyncio

import pytest

from bench.http_load import Connection, ResponseError, parse_head, request_bytes


def test_a_request_is_encoded_once_with_its_length_and_headers() -> None:
    raw = request_bytes("127.0.0.1:8080", "POST", "/api/v1/jobs", {"kind": "noop"}, {"Authorization": "Bearer t"})
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /api/v1/jobs HTTP/1.1"
    assert b"Authorization: Bearer t" in head
    assert b"Content-Length: 15" in head
    assert body == b'{"kind":"noop"}'


def test_the_head_gives_status_and_length_whatever_the_header_case() -> None:
    assert parse_head(b"HTTP/1.1 202 Accepted\r\nCONTENT-LENGTH: 12\r\nServer: x") == (202, 12)
    with pytest.raises(ResponseError, match="Content-Length"):
        parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")
    with pytest.raises(ResponseError, match="status line"):
        parse_head(b"garbage")


async def test_a_response_split_across_reads_is_read_whole_and_the_next_one_after_it() -> None:
    connection = Connection()
    loop = asyncio.get_running_loop()
    connection.waiting = loop.create_future()
    connection.data_received(b"HTTP/1.1 202 Accepted\r\nContent-Len")
    connection.data_received(b"gth: 5\r\n\r\nhel")
    assert not connection.waiting.done()
    connection.data_received(b"lo")
    first = connection.waiting.result()
    assert (first.status, first.body) == (202, b"hello")
    connection.waiting = loop.create_future()
    connection.data_received(b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno")
    second = connection.waiting.result()
    assert (second.status, second.body) == (500, b"no")
