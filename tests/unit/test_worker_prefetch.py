"""The worker's prefetch counted in jobs: how much of a delivery it keeps, and what it lets the broker send."""

from __future__ import annotations

from gleaner.services.worker.prefetch import Held, JobWindow


def test_a_fresh_worker_takes_as_many_full_groups_as_twice_its_concurrency_holds() -> None:
    assert JobWindow.of_worker(concurrency=32, group_max_jobs=16).prefetch() == 4
    assert JobWindow.of_worker(concurrency=2, group_max_jobs=16).prefetch() == 1  # never 0, which is no limit


def test_a_group_larger_than_the_room_left_is_kept_in_part() -> None:
    window = JobWindow.of_worker(concurrency=4, group_max_jobs=16)
    assert Held(window).admit(16) == 8
    assert window.prefetch() == 1  # full: only the delivery it holds


def test_a_full_worker_still_keeps_one_job_of_each_delivery() -> None:
    window = JobWindow(limit=2, jobs=2, messages=1)
    assert window.admit(5) == 1  # progress for every delivery: handing all of it on could loop


def test_single_job_messages_raise_the_prefetch_towards_the_room_left() -> None:
    window = JobWindow.of_worker(concurrency=32, group_max_jobs=16)
    for _ in range(20):
        window.delivered()
        Held(window).admit(1)
    # 20 jobs held of 64, one a message lately (the estimate still a little above 1): close to 44 more messages
    assert 35 <= window.prefetch() - window.messages <= 44


def test_a_settled_delivery_frees_the_jobs_it_still_held() -> None:
    window = JobWindow.of_worker(concurrency=4, group_max_jobs=4)
    window.delivered()
    held = Held(window)
    held.admit(4)
    held.ended()
    assert window.jobs == 3
    held.close()
    assert (window.jobs, window.messages) == (0, 0)
