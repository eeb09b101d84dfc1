"""The worker's prefetch counted in jobs: how much of a delivery it keeps, and what it lets the broker send."""

from __future__ import annotations

from gleaner.services.worker.prefetch import Held, JobWindow, announced_jobs


def test_a_fresh_worker_takes_as_many_full_groups_as_twice_its_concurrency_holds() -> None:
    assert JobWindow.of_worker(concurrency=32, group_max_jobs=16).prefetch() == 4
    assert JobWindow.of_worker(concurrency=2, group_max_jobs=16).prefetch() == 1  # never 0, which is no limit


def test_a_group_larger_than_the_room_left_is_kept_in_part() -> None:
    window = JobWindow.of_worker(concurrency=4, group_max_jobs=16)
    held = Held.of_delivery(window, announced_jobs({"jobs": 16}))
    assert held.fit(16) == 12  # eight aimed at, four more before handing on
    assert window.prefetch() == 1  # full: only the delivery it holds


def test_a_full_worker_still_keeps_one_job_of_each_delivery() -> None:
    window = JobWindow(limit=2, jobs=2, messages=1)
    assert Held.of_delivery(window, 5).fit(5) == 1  # progress for every delivery: handing all of it on could loop


def test_deliveries_arriving_together_do_not_count_on_the_same_room() -> None:
    window = JobWindow.of_worker(concurrency=16, group_max_jobs=16)
    first, second = (Held.of_delivery(window, announced_jobs({"jobs": 16})) for _ in range(2))
    assert (first.fit(16), second.fit(16)) == (16, 16)
    assert window.prefetch() == 2  # the room is spent: no third delivery yet


def test_the_body_corrects_a_missing_or_wrong_jobs_header() -> None:
    window = JobWindow.of_worker(concurrency=4, group_max_jobs=16)
    assert announced_jobs(None) == announced_jobs({"jobs": "many"}) == announced_jobs({"jobs": 10**9}) == 1
    assert Held.of_delivery(window, 1).fit(8) == 8
    assert Held.of_delivery(window, 5).fit(2) == 2
    assert Held.of_delivery(window, 1).fit(9) == 2  # the room left before handing on
    assert window.jobs == 12


def test_single_job_messages_raise_the_prefetch_towards_the_room_left() -> None:
    window = JobWindow.of_worker(concurrency=32, group_max_jobs=16)
    for _ in range(40):
        Held.of_delivery(window, 1)
    # 40 jobs held of 64, one a message lately (the estimate falls slowly, still a little above 1): close to 24 more
    assert 18 <= window.prefetch() - window.messages <= 24


def test_the_estimate_follows_a_larger_group_at_once() -> None:
    window = JobWindow.of_worker(concurrency=32, group_max_jobs=16)
    for count in (8, 8, 8, 16):
        Held.of_delivery(window, count).close()
    assert window.per_message == 16.0  # two more groups of 16 fit 32 jobs of room: not three


def test_a_settled_delivery_frees_the_jobs_it_still_held() -> None:
    window = JobWindow.of_worker(concurrency=4, group_max_jobs=4)
    held = Held.of_delivery(window, 4)
    held.ended()
    assert window.jobs == 3
    held.close()
    assert (window.jobs, window.messages) == (0, 0)


def test_a_slow_job_of_a_group_as_large_as_the_window_does_not_keep_the_other_slots_idle() -> None:
    window = JobWindow.of_worker(concurrency=32, group_max_jobs=64)
    slow = Held.of_delivery(window, announced_jobs({"jobs": 64}))
    assert slow.fit(64) == 64
    assert window.prefetch() == 1  # 32 running and 32 waiting for a slot: nothing more yet
    slow.ended(63)  # all but one ended; the message stays unsettled until the slow one is recorded
    assert window.prefetch() == 2  # one more group, though the room left (63 jobs) takes no group of 64 whole
    assert Held.of_delivery(window, announced_jobs({"jobs": 64})).fit(64) == 64  # kept whole: nothing handed on
    assert window.prefetch() == 2  # 65 held, more than run at once: no third message until some end


def test_a_worker_holding_fewer_jobs_than_it_runs_always_asks_for_one_more_message() -> None:
    window = JobWindow.of_worker(concurrency=4, group_max_jobs=16)
    held = Held.of_delivery(window, announced_jobs({"jobs": 16}))
    assert held.fit(16) == 12
    held.ended(9)  # three left, fewer than run at once
    assert window.prefetch() == 2
