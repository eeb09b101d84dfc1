"""`make chaos` runs end to end at tiny sizes, so its runner cannot rot (the fault group runs every scenario)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fault_rig import require_private_services
from tests.support.recording import REPO_ROOT

pytestmark = pytest.mark.faults

SMOKED = ("plain", "poison")


def test_the_chaos_runner_starts_its_own_services_and_prints_a_row_per_scenario(tmp_path: Path) -> None:
    require_private_services()
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.faults.chaos",
            "--smoke",
            "--scenarios",
            ",".join(SMOKED),
            "--logs",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, (process.stdout + process.stderr)[-4000:]
    header, _rule, *rows = process.stdout.strip().splitlines()
    assert header.startswith("| scenario | acknowledged | finished | lost | re-executed | completed twice |")
    assert [row.split(" | ")[0] for row in rows] == ["| plain run", "| poison messages"]
    assert all(row.endswith("| all held |") for row in rows), rows
