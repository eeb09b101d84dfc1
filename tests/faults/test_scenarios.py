"""Issue 10's fault scenarios at `make test` size, each against the private broker and cluster only."""

from __future__ import annotations

import pytest

from tests.faults import scenarios
from tests.faults.outcome import Outcome
from tests.support.fault_rig import FaultRig

pytestmark = pytest.mark.faults

SIZES = scenarios.Sizes()


def holds(outcome: Outcome) -> None:
    print(outcome.report())
    assert not outcome.problems, outcome.report()


async def test_twenty_thousand_jobs_on_two_workers_each_run_once_without_a_deadlock(rig: FaultRig) -> None:
    holds(await scenarios.plain_run(rig, SIZES))


async def test_jobs_in_flight_when_the_broker_drops_the_connection_finish_once_within_5s_of_reconnecting(
    rig: FaultRig,
) -> None:
    holds(await scenarios.connection_drop(rig, SIZES))


async def test_while_rabbitmq_is_stopped_submissions_and_slots_commit_health_says_degraded_and_all_start_on_return(
    rig: FaultRig,
) -> None:
    holds(await scenarios.broker_outage(rig, SIZES))


async def test_while_postgresql_is_down_nothing_is_acknowledged_and_every_job_ends_within_lease_plus_15s(
    rig: FaultRig,
) -> None:
    holds(await scenarios.postgres_outage(rig, SIZES))


async def test_a_worker_killed_and_restarted_under_the_same_id_gets_its_jobs_recovered_within_lease_plus_5s(
    rig: FaultRig,
) -> None:
    holds(await scenarios.worker_kill(rig, SIZES))


async def test_killing_the_scheduler_leader_three_times_neither_repeats_nor_skips_a_slot(rig: FaultRig) -> None:
    holds(await scenarios.leader_kills(rig, SIZES))


async def test_each_poison_message_becomes_one_dead_letter_and_the_worker_keeps_working(rig: FaultRig) -> None:
    holds(await scenarios.poison_messages(rig, SIZES))
