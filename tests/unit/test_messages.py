"""The job envelope round-trips and refuses anything else with a DecodeError."""

from __future__ import annotations

import pytest

from shared.errors import DecodeError
from shared.messages import JobMessage


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
