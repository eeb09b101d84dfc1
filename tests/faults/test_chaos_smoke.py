"""`make chaos` at tiny sizes, so its runner cannot rot (the fault group runs every scenario at test size)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.faults import chaos
from tests.support.fault_rig import FaultRig
from tests.support.recording import REPO_ROOT

pytestmark = pytest.mark.faults


async def test_the_chaos_runner_runs_its_scenarios_at_smoke_size_and_prints_a_row_for_each(rig: FaultRig) -> None:
    plan = chaos.choose(["--smoke", "--scenarios", "plain,poison"])
    outcomes = await chaos.run(rig, plan.names, plan.sizes)

    header, _rule, *rows = chaos.table(outcomes).splitlines()
    assert header.startswith("| scenario | acknowledged | finished | lost | re-executed | completed twice |")
    assert [row.split(" | ")[0] for row in rows] == ["| plain run", "| poison messages"]
    assert chaos.exit_status(outcomes) == 0, "\n".join(o.report() for o in outcomes)
    assert outcomes[0].acknowledged == outcomes[0].finished == plan.sizes.plain_jobs


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
