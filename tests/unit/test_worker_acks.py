"""Acks of a finish batch go out as one `multiple` ack up to the lowest delivery still running."""

from __future__ import annotations

from gleaner.services.worker.acks import AckWindow


def window(*tags: int) -> AckWindow:
    acks = AckWindow()
    for tag in tags:
        acks.delivered(tag)
    return acks


def test_a_run_of_finished_deliveries_is_acked_by_one_multiple_ack() -> None:
    acks = window(1, 2, 3, 4)
    acks.ready |= {1, 2, 3}
    assert acks.plan() == (3, [])
    assert acks.outstanding == {4}


def test_deliveries_above_one_still_running_are_acked_one_by_one_not_held_back() -> None:
    acks = window(1, 2, 3, 4, 5)
    acks.ready |= {1, 2, 4, 5}
    assert acks.plan() == (2, [4, 5])
    acks.ready.add(3)
    assert acks.plan() == (None, [3])
    assert acks.outstanding == set()


def test_a_lone_ack_is_sent_alone() -> None:
    acks = window(1, 2)
    acks.ready.add(1)
    assert acks.plan() == (None, [1])


def test_a_nacked_or_rejected_delivery_no_longer_blocks_the_run() -> None:
    acks = window(1, 2, 3)
    acks.settled(1)
    acks.ready |= {2, 3}
    assert acks.plan() == (3, [])


def test_no_multiple_ack_while_a_lower_tag_was_not_seen_yet() -> None:
    acks = window(1, 3, 4)  # tag 2 delivered but its flow not started: a multiple ack would cover it
    acks.ready |= {3, 4}
    assert acks.plan() == (None, [3, 4])
