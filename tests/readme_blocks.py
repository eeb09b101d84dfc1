"""The README's fenced blocks, in order, with the section each sits in (for the README command tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{2,4} (.+)$", re.MULTILINE)
SHELL = ("sh", "bash")
# the only languages a block may have: a new one (```console, ```shell) would slip past the shell-block test
KNOWN_LANGUAGES = {"sh", "bash", "python", "json", "text", ""}
# the shell blocks run elsewhere, by section: the reason, and the test that runs them
ELSEWHERE = {
    "Two commands": "`make run` is the stack the README command test starts; `make test` is the suite it belongs to",
    "Write a handler": "tests/e2e/test_readme_handlers.py runs both worker commands (they serve until stopped)",
}
# the line `make run` prints for another terminal, as the README shows it for the defaults
EXPORT_LINE = re.compile(r"^export PATH=.*GLEANER_DATABASE_URL=\S+$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Block:
    section: str
    lang: str
    body: str


def blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    found = []
    for match in FENCE.finditer(text):
        headings = HEADING.findall(text, 0, match.start())
        found.append(Block(headings[-1] if headings else "", match.group("lang"), match.group("body")))
    return found


def shell_blocks_to_run() -> list[Block]:
    """Every sh/bash block not run elsewhere, in README order: what a user types, top to bottom."""
    return [block for block in blocks() if block.lang in SHELL and block.section not in ELSEWHERE]
