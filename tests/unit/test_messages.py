"""The job envelopes (one job, or a group) round-trip and refuse anything else with a DecodeError."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from gleaner.shared.errors import DecodeError
from gleaner.shared.messages import MAX_GROUP, MESSAGE_FIELDS, JobGroup, JobMessage, decode_jobs, headers_of


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


def member(job_id: int, **fields: object) -> JobMessage:
    return JobMessage(job_id=job_id, attempt=1, queue="bulk", kind="noop", priority=3, **fields)  # type: ignore[arg-type]


def test_a_group_carries_its_jobs_each_at_its_own_attempt_and_decodes_to_them() -> None:
    jobs = (member(1), member(2, request_id="r2"), JobMessage(job_id=3, attempt=4, queue="bulk", kind="x", priority=3))
    group = JobGroup(jobs)
    assert orjson.loads(group.encode())["v"] == 2
    assert decode_jobs(group.encode()) == jobs
    assert headers_of(group) == {"jobs": 3}


def test_a_version_1_message_still_decodes_as_one_job() -> None:
    job = member(9, request_id="r9")
    assert decode_jobs(job.encode()) == (job,)


def test_a_group_only_holds_jobs_of_one_queue_priority_and_due_time() -> None:
    with pytest.raises(ValueError, match="share"):
        JobGroup((member(1), JobMessage(job_id=2, attempt=1, queue="bulk", kind="noop", priority=4)))
    with pytest.raises(ValueError, match="at least one"):
        JobGroup(())


@pytest.mark.parametrize(
    "body",
    [
        {"v": 2, "queue": "bulk", "jobs": []},
        {"v": 2, "queue": "bulk", "jobs": {"id": 1}},
        {"v": 2, "queue": "bulk"},
        {"v": 2, "queue": "bulk", "jobs": [[1, 1, "noop"]]},
        {"v": 2, "queue": "bulk", "jobs": [{"id": 1, "attempt": 1, "kind": "noop", "queue": "other"}]},
        {"v": 2, "queue": "bulk", "jobs": [{"id": 1, "attempt": 0, "kind": "noop"}]},
        {"v": 2, "queue": "Bulk", "jobs": [{"id": 1, "attempt": 1, "kind": "noop"}]},
        {"v": 2, "queue": "bulk", "priority": 10, "jobs": [{"id": 1, "attempt": 1, "kind": "noop"}]},
        {"v": 2, "queue": "bulk", "jobs": [{"id": n, "attempt": 1, "kind": "noop"} for n in range(1, MAX_GROUP + 2)]},
        {"v": 3, "queue": "bulk", "jobs": [{"id": 1, "attempt": 1, "kind": "noop"}]},
    ],
)
def test_a_malformed_group_is_poison(body: dict[str, object]) -> None:
    with pytest.raises(DecodeError):
        decode_jobs(orjson.dumps(body))


def test_a_generation_travels_only_when_set_and_a_message_without_one_is_generation_zero() -> None:
    changed = JobMessage(job_id=7, attempt=1, queue="default", kind="noop", generation=3)
    assert JobMessage.decode(changed.encode()) == changed
    plain = JobMessage(job_id=7, attempt=1, queue="default", kind="noop")
    assert b"gen" not in plain.encode() and JobMessage.decode(plain.encode()).generation == 0


def test_each_job_of_a_group_carries_its_own_generation() -> None:
    jobs = (member(1, generation=3), member(2))
    assert decode_jobs(JobGroup(jobs).encode()) == jobs
    assert [job.get("gen") for job in orjson.loads(JobGroup(jobs).encode())["jobs"]] == [3, None]


FIRST = {"id": 1, "attempt": 1, "kind": "noop", "request_id": "req-1"}


@pytest.mark.parametrize(
    "later",
    [
        {"id": 0, "attempt": 1, "kind": "noop", "request_id": "req-1"},
        {"id": True, "attempt": 1, "kind": "noop", "request_id": "req-1"},
        {"id": 2, "attempt": 2**31, "kind": "noop", "request_id": "req-1"},
        {"id": 2, "attempt": 1.0, "kind": "noop", "request_id": "req-1"},
        {"id": 2, "attempt": 1, "kind": "noop", "request_id": "req-1", "gen": -1},
        {"id": 2, "attempt": 1, "kind": "No Such Kind", "request_id": "req-1"},
        {"id": 2, "attempt": 1, "kind": "noop", "request_id": "bad\nid"},
        {"id": 2, "attempt": 1, "request_id": "req-1"},
    ],
)
def test_a_malformed_job_after_the_first_of_a_group_is_poison_too(later: dict[str, object]) -> None:
    with pytest.raises(DecodeError):
        decode_jobs(orjson.dumps({"v": 2, "queue": "bulk", "jobs": [FIRST, later]}))


def test_the_later_jobs_of_a_group_decode_as_the_first_does_whether_they_share_its_kind_and_request_id_or_not() -> None:
    assert tuple(f.name for f in dataclasses.fields(JobMessage)) == MESSAGE_FIELDS
    members = [
        FIRST,
        {"id": 2, "attempt": 3, "kind": "noop", "request_id": "req-1", "gen": 4},
        {"id": 3, "attempt": 1, "kind": "http.fetch", "request_id": "req-1"},
        {"id": 4, "attempt": 1, "kind": "noop"},
        {"id": 5, "attempt": 1, "kind": "noop", "request_id": "req-2"},
    ]
    jobs = decode_jobs(orjson.dumps({"v": 2, "queue": "bulk", "priority": 4, "due_ms": 99, "jobs": members}))
    shared = {"queue": "bulk", "priority": 4, "due_ms": 99}
    assert jobs == tuple(JobMessage.decode(orjson.dumps({"v": 1, **m, **shared})) for m in members)
    assert [(j.job_id, j.attempt, j.generation, j.request_id) for j in jobs[:2]] == [
        (1, 1, 0, "req-1"),
        (2, 3, 4, "req-1"),
    ]
