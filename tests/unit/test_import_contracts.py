"""The layering `make lint` checks (import-linter, `[tool.importlinter]` in pyproject.toml): a module that breaks
a contract fails it. Each case adds one import to a copy of the package and runs `lint-imports` on the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the repository's contracts, on the `gleaner` package found under `root`."""
    return subprocess.run(
        [str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "gleaner", tmp_path / "gleaner", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


# the public modules import an operator module: the operator imports `gleaner`, so any other service's module
# would break the independence contract too, and each case breaks exactly one contract
def add_import(root: Path, module: str, statement: str) -> None:
    path = root / module
    path.write_text((path.read_text() if path.exists() else '"""A module that breaks a contract."""\n') + statement)


def test_an_untouched_copy_keeps_every_contract(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        (
            "gleaner/services/worker/reach_over.py",
            "from gleaner.services.scheduler import leadership\n",
            "gateway, worker, scheduler and operator never import each other",
        ),
        ("gleaner/shared/reach_up.py", "import gleaner.services.gateway.app\n", "gleaner.shared imports no service"),
        (
            "gleaner/models.py",
            "from gleaner.services.operator import tables\n",
            "the public modules of gleaner (clients, handler API, testing) import no service",
        ),
        (
            "gleaner/__init__.py",
            "from gleaner.services.operator import tables\n",
            "the public modules of gleaner (clients, handler API, testing) import no service",
        ),
        ("gleaner/shared/scheduling/planner.py", "import asyncpg\n", "pure modules import no I/O library"),
        ("gleaner/shared/field_checks.py", "from gleaner.shared import db\n", "pure modules import no I/O library"),
    ],
    ids=["service-to-service", "shared-to-service", "client-to-service", "package-to-service", "pure-io", "indirect"],
)
def test_an_import_that_breaks_a_contract_fails_the_lint(
    copy: Path, module: str, statement: str, contract: str
) -> None:
    add_import(copy, module, statement)

    result = lint_imports(copy)

    assert result.returncode == 1, result.stdout
    assert f"{contract} BROKEN" in result.stdout
    assert "1 broken" in result.stdout
