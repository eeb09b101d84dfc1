"""Find and run the offline ops tools that scripts/install-ops-tools.sh installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_HINT = "run `bash scripts/install-ops-tools.sh` (or `make tools`)"
_SEARCH = (Path(sys.executable).parent, ROOT / ".venv" / "bin", ROOT / ".tools" / "bin")


def tool(name: str) -> Path:
    """The tool's path; a missing tool fails the test (it never skips) with how to install it."""
    for directory in _SEARCH:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)


def run(*args: str | Path, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root and capture its output as text."""
    return subprocess.run(
        [str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"`{' '.join(result.args)}` exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout
