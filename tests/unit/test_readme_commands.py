"""The README's shell blocks are all accounted for, and none hard-codes an id that a fresh stack may not have."""

from __future__ import annotations

import re

from tests.readme_blocks import ELSEWHERE, EXPORT_LINE, KNOWN_LANGUAGES, SHELL, blocks, shell_blocks_to_run


def test_every_block_has_a_known_language_and_every_shell_block_is_run_here_or_elsewhere() -> None:
    found = blocks()
    assert {block.lang for block in found} <= KNOWN_LANGUAGES
    elsewhere = [block for block in found if block.lang in SHELL and block.section in ELSEWHERE]
    assert sorted({block.section for block in elsewhere}) == sorted(ELSEWHERE)
    assert len(elsewhere) == len(ELSEWHERE)  # one block each: a new block there must be run somewhere
    assert len(shell_blocks_to_run()) >= 5


def test_no_shell_block_uses_a_hard_coded_id_or_port() -> None:
    for block in shell_blocks_to_run():
        # commands only: a comment line shows an example answer (`# 202 {"id": 1, ...}`)
        body = "\n".join(line for line in EXPORT_LINE.sub("", block.body).splitlines() if not line.startswith("#"))
        assert not re.search(r"/(jobs|schedules|dead-letters|api-keys)/\d+", body), block.body
        assert not re.search(r"\b(jobs (show|cancel|retry)|job-)\s*\d+", body), block.body
        assert "localhost:8080" not in body and "127.0.0.1:8080" not in body, block.body


def test_the_first_block_a_user_runs_starts_with_the_line_make_run_prints() -> None:
    first = shell_blocks_to_run()[0]
    assert EXPORT_LINE.match(first.body.splitlines()[0])
    assert "GLEANER_API_TOKEN=" in first.body and "$TOKEN" not in first.body
