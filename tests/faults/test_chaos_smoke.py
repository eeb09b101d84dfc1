"""`make chaos` at tiny sizes, so its runner cannot rot (the fault group runs every scenario at test size)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.faults import chaos
from tests.support.fault_rig import FaultRig
from tests.support.recording import REPO_ROOT

pytestmark = pytest.mark.faults


async def test_the_chaos_runner_runs_a_scenario_at_smoke_size_and_prints_its_table_row(rig: FaultRig) -> None:
    plan = chaos.choose(["--smoke", "--scenarios", "poison"])
    outcomes = await chaos.run(rig, plan.names, plan.sizes)

    header, _rule, *rows = chaos.table(outcomes).splitlines()
    assert header.startswith("| scenario | acknowledged | finished | lost | re-executed | completed twice |")
    assert [row.split(" | ")[0] for row in rows] == ["| poison messages"]
    assert chaos.exit_status(outcomes) == 0, "\n".join(o.report() for o in outcomes)


def test_the_chaos_command_refuses_an_unknown_scenario_and_names_the_choices() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "tests.faults.chaos", "--scenarios", "plain,meteor"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 2
    assert "unknown scenario(s): meteor; choose from plain, connection-drop" in process.stderr


def test_the_chaos_command_runs_every_scenario_at_ten_times_the_counts_with_the_same_fault_durations() -> None:
    plan = chaos.choose([])
    assert plan.names == tuple(chaos.SCENARIOS)
    assert (plan.sizes.plain_jobs, plan.sizes.drop_in_flight, plan.sizes.leader_kills) == (200_000, 600, 30)
    assert (plan.sizes.broker_outage_s, plan.sizes.postgres_outage_s, plan.sizes.plain_workers) == (20, 10, 2)
