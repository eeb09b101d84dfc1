"""The job envelope round-trips and refuses anything else with a DecodeError."""

from __future__ import annotations

import orjson
import pytest

from gleaner.shared.errors import DecodeError
from gleaner.shared.messages import JobMessage


def test_an_envelope_survives_encode_and_decode() -> None:
    message = JobMessage(job_id=7, attempt=2, queue="default", kind="noop", priority=9, due_ms=123, request_id="r1")
    assert JobMessage.decode(message.encode()) == message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"v": 2, "id": 1, "attempt": 1, "queue": "q", "kind": "k"}',
        b'{"v": 1, "attempt": 1, "queue": "q", "kind": "k"}',
        b'{"v": 1, "id": "1", "attempt": 1, "queue": "q", "kind": "k"}',
        b'{"v": 1, "id": 1, "attempt": 0, "queue": "q", "kind": "k"}',
        b'{"v": 1, "id": 1, "attempt": 1, "queue": "", "kind": "k"}',
        b'{"v": 1, "id": 1, "attempt": 1, "queue": "q", "kind": "k", "priority": 10}',
        b'{"v": 1, "id": true, "attempt": 1, "queue": "q", "kind": "k"}',
        b"\xff\xfe",
    ],
)
def test_a_malformed_body_raises_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError):
        JobMessage.decode(body)


@pytest.mark.parametrize(
    "fields",
    [
        {"id": 2**63},  # past bigint: asyncpg cannot even send it
        {"id": -1},
        {"attempt": 2**31},  # past int
        {"due_ms": 2**63},
        {"queue": "a\x00b"},
        {"queue": "Default"},
        {"queue": "default\n"},
        {"queue": "q" * 64},
        {"kind": "noop\x00"},
        {"kind": "k" * 101},
        {"request_id": "r\x00"},
        {"request_id": "r" * 129},
        {"request_id": 7},
    ],
)
def test_a_field_outside_what_postgres_and_the_workers_accept_is_refused(fields: dict[str, object]) -> None:
    body = {"v": 1, "id": 1, "attempt": 1, "queue": "default", "kind": "noop", **fields}
    with pytest.raises(DecodeError):
        JobMessage.decode(orjson.dumps(body))


def test_the_largest_ids_and_attempts_postgres_stores_are_accepted() -> None:
    message = JobMessage(
        job_id=2**63 - 1, attempt=2**31 - 1, queue="q-1_x", kind="scrape.pages:v2", request_id="r" * 128
    )
    assert JobMessage.decode(message.encode()) == message


def test_a_generation_travels_only_when_set_and_a_message_without_one_is_generation_zero() -> None:
    changed = JobMessage(job_id=7, attempt=1, queue="default", kind="noop", generation=3)
    assert JobMessage.decode(changed.encode()) == changed
    plain = JobMessage(job_id=7, attempt=1, queue="default", kind="noop")
    assert b"gen" not in plain.encode() and JobMessage.decode(plain.encode()).generation == 0
