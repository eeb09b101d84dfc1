"""Which rows share a message (pure): due rows by queue and priority up to the group size, delayed rows alone."""

from __future__ import annotations

from gleaner.shared.messages import JobGroup, JobMessage
from gleaner.shared.metrics import Metrics
from gleaner.shared.outbox import OutboxRow, _count, envelopes


def row(job_id: int, queue: str = "default", priority: int = 0, delay_s: float = 0.0) -> OutboxRow:
    return OutboxRow(job_id, 0, queue, "noop", priority, delay_s, 1_000 if delay_s else 0)


def carried(planned: list[tuple[JobMessage | JobGroup, list[int]]]) -> list[list[int]]:
    return [members for _, members in planned]


def test_due_rows_of_one_queue_and_priority_share_messages_of_at_most_the_group_size() -> None:
    rows = [row(n) for n in range(1, 8)]
    planned = envelopes(rows, 3)
    assert carried(planned) == [[0, 1, 2], [3, 4, 5], [6]]
    first, _ = planned[0]
    assert isinstance(first, JobGroup) and [j.job_id for j in first.jobs] == [1, 2, 3]
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
