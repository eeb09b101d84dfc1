"""Which rows share a message (pure): due rows by queue and priority up to the group size, delayed rows alone."""

from __future__ import annotations

from gleaner.shared.messages import Envelope, JobGroup, JobMessage, PackedGroup, decode_jobs, headers_of
from gleaner.shared.metrics import Metrics
from gleaner.shared.outbox import OutboxRow, _count, envelopes
from gleaner.shared.publisher import batch_end


def row(job_id: int, queue: str = "default", priority: int = 0, delay_s: float = 0.0) -> OutboxRow:
    return OutboxRow(job_id, 0, queue, "noop", priority, delay_s, 1_000 if delay_s else 0)


def carried(planned: list[tuple[Envelope, list[int]]]) -> list[list[int]]:
    return [members for _, members in planned]


def test_due_rows_of_one_queue_and_priority_share_messages_of_at_most_the_group_size() -> None:
    rows = [row(n) for n in range(1, 8)]
    planned = envelopes(rows, 3)
    assert carried(planned) == [[0, 1, 2], [3, 4, 5], [6]]
    first, _ = planned[0]
    assert isinstance(first, PackedGroup) and [j.job_id for j in decode_jobs(first.encode())] == [1, 2, 3]
    last, _ = planned[-1]
    assert isinstance(last, JobMessage) and last.job_id == 7  # a group of one is a version 1 message


def test_queues_and_priorities_never_share_a_message() -> None:
    rows = [row(1), row(2, priority=9), row(3, queue="bulk"), row(4), row(5, priority=9)]
    assert carried(envelopes(rows, 16)) == [[0, 3], [1, 4], [2]]


def test_a_delayed_row_travels_alone_through_the_delay_levels() -> None:
    rows = [row(1), row(2, delay_s=5.0), row(3)]
    planned = envelopes(rows, 16)
    assert carried(planned) == [[0, 2], [1]]
    delayed, _ = planned[1]
    assert isinstance(delayed, JobMessage) and delayed.due_ms == 1_000


def test_a_group_size_of_one_keeps_a_message_per_job() -> None:
    planned = envelopes([row(n) for n in range(1, 5)], 1)
    assert carried(planned) == [[0], [1], [2], [3]]
    assert all(isinstance(envelope, JobMessage) for envelope, _ in planned)


def in_outbox(job_id: int, outbox_id: int | None) -> OutboxRow:
    return OutboxRow(job_id, 0, "default", "noop", 0, 0.0, 0, outbox_id=outbox_id)


def test_a_publish_batch_never_splits_the_rows_of_one_outbox_row() -> None:
    rows = [in_outbox(1, 7), in_outbox(2, 7), in_outbox(3, 7), in_outbox(4, 8), in_outbox(5, None)]
    assert batch_end(rows, 1) == 3  # the outbox row is deleted once all of its rows are confirmed: one batch
    assert batch_end(rows, 3) == 3
    assert batch_end(rows, 4) == 4
    assert batch_end(rows, 100) == 5


def test_rows_marked_one_by_one_are_cut_anywhere() -> None:
    rows = [in_outbox(n, None) for n in range(1, 5)]
    assert batch_end(rows, 2) == 2


def test_confirmed_rows_are_counted_per_queue_and_unconfirmed_ones_not_at_all() -> None:
    metrics = Metrics("gateway")
    rows = [row(1), row(2, queue="bulk"), row(3), row(4, delay_s=5.0)]
    planned = envelopes(rows, 16)
    confirmed = [envelope.queue != "bulk" for envelope, _ in planned]
    _count(metrics, planned, confirmed, [r for r in rows if r.queue != "bulk"], 1)
    enqueued = {
        q: metrics.registry.get_sample_value("gleaner_jobs_enqueued_total", {"queue": q}) for q in ("default", "bulk")
    }
    assert enqueued == {"default": 3.0, "bulk": None}


def test_a_group_packed_from_rows_is_the_message_a_group_of_their_jobs_makes() -> None:
    rows = [row(1), row(2), row(3)]
    rows[1].request_id = "req-1"
    rows[2].generation = 4
    packed, _ = envelopes(rows, 16)[0]
    made = JobGroup(tuple(r.message() for r in rows))
    assert packed.encode() == made.encode()
    assert decode_jobs(packed.encode()) == made.jobs
    assert (packed.queue, packed.priority, headers_of(packed)) == (made.queue, made.priority, headers_of(made))
