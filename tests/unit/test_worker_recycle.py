"""Recycling limits (pure): the job allowance and the memory check."""

from __future__ import annotations

from pathlib import Path

from gleaner.services.worker.recycle import JobAllowance, memory_reason, resident_mb


def test_the_allowance_is_spent_after_max_jobs_claims_and_a_stale_claim_gives_its_place_back() -> None:
    allowance = JobAllowance(max_jobs=2)
    assert allowance.take() and not allowance.spent
    assert allowance.take() and allowance.spent
    assert not allowance.take()
    allowance.put_back()
    assert not allowance.spent and allowance.take()
    assert allowance.reason() == "took 2 jobs (GLEANER_WORKER_MAX_JOBS=2)"


def test_a_group_takes_what_is_left_of_the_allowance() -> None:
    allowance = JobAllowance(max_jobs=5)
    assert allowance.take(3) == 3
    assert allowance.take(3) == 2 and allowance.spent
    assert allowance.take(3) == 0


def test_no_job_limit_never_runs_out() -> None:
    allowance = JobAllowance()
    assert all(allowance.take() for _ in range(10_000)) and not allowance.spent


def test_memory_past_the_limit_is_a_reason_to_recycle_and_no_limit_or_no_reading_is_none() -> None:
    assert memory_reason(900.4, 768) == "resident memory 900 MB is past GLEANER_WORKER_MAX_RSS_MB=768"
    assert memory_reason(700.0, 768) is None
    assert memory_reason(5000.0, 0) is None
    assert memory_reason(None, 768) is None


def test_the_resident_memory_is_read_from_proc_and_absent_without_it(tmp_path: Path) -> None:
    rss = resident_mb()
    assert rss is not None and 1 < rss < 100_000
    assert resident_mb(tmp_path / "missing") is None
