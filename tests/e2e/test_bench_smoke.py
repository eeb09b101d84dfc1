"""The benchmark runs end to end at tiny sizes, so it cannot rot (it measures nothing here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.services import require_services


def test_the_benchmark_runs_every_case_and_writes_its_json(tmp_path: Path) -> None:
    require_services()
    process = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, (process.stdout + process.stderr)[-4000:]
    [written] = list(tmp_path.glob("*.json"))
    results = json.loads(written.read_text())["results"]
    assert set(results) == {"batch", "single", "e2e", "latency", "retries", "scheduler", "scale", "console", "prune"}
    assert results["e2e"]["attempt_rows"] == results["e2e"]["jobs"]
    # the scale case ran its e2e probe over the loaded history and answered every read it measures
    assert results["scale"]["loaded"]["rows"] > 0
    assert results["scale"]["e2e"]["attempt_rows"] == results["scale"]["e2e"]["jobs"]
    assert {"list_state", "job", "attempts", "dead_letters", "queues", "stats_7d"} <= set(results["scale"]["reads"])
    # the console case signed in and rendered every page over the loaded history
    assert {"overview", "jobs", "job", "dead_letters", "schedules", "kinds"} <= set(results["console"]["pages"])
    # the prune case ran the e2e probe with pruning idle and while pruning, and the pruner removed all it loaded
    assert results["prune"]["idle"]["attempt_rows"] == results["prune"]["pruning"]["jobs"]
    assert results["prune"]["ratio"] > 0 and results["prune"]["history_rows_left"] == 0
    assert results["retries"]["retries"] == 2 * results["retries"]["jobs"]
    assert results["scheduler"]["fires"] > 0 and results["scheduler"]["duplicates"] == 0


def test_the_statement_probe_prints_each_steps_cpu_and_wal_a_job() -> None:
    require_services()
    process = subprocess.run(
        [sys.executable, "-m", "bench.statements", "1000"], capture_output=True, text=True, timeout=300, check=False
    )
    assert process.returncode == 0, (process.stdout + process.stderr)[-4000:]
    steps = [line.split()[0] for line in process.stdout.splitlines()[:3]]
    assert steps == ["insert", "claim", "finish"]
    assert all("backend CPU a job" in line and "B WAL a job" in line for line in process.stdout.splitlines()[:3])
