"""The README's "Write a handler" Python blocks run as written, with no services: the module, then its test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.test_readme_python import expected_output, python_blocks

SECTION = "Write a handler"


def test_the_section_has_a_handler_module_and_a_test_of_it() -> None:
    module, test, *_ = python_blocks(SECTION)
    assert module.startswith("# myscrapers/boards.py") and "@registry.handler(" in module
    assert test.startswith("# test_boards.py") and expected_output(test)


def test_the_handler_module_and_its_test_run_as_written(tmp_path: Path) -> None:
    module, test, *_ = python_blocks(SECTION)
    (tmp_path / "myscrapers").mkdir()
    (tmp_path / "myscrapers" / "__init__.py").write_text("")
    (tmp_path / "myscrapers" / "boards.py").write_text(module)
    (tmp_path / "test_boards.py").write_text(test)

    done = subprocess.run(
        [sys.executable, "test_boards.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected_output(test)


def test_the_soft_time_limit_example_module_imports_and_registers_its_kind(tmp_path: Path) -> None:
    (module,) = [block for block in python_blocks(SECTION) if block.startswith("# myscrapers/crawl.py")]
    (tmp_path / "crawl.py").write_text(module)
    check = "import crawl; spec = crawl.registry.get('boards.crawl'); print(spec.soft_timeout_s, spec.description)"

    done = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "240 Crawl as many pages as time allows."
