"""The GLEANER_* variable names that gleaner/shared/config.py reads, to catch a misspelled setting in deploy files."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from tests.ops.tools import ROOT


@cache
def known_variables() -> frozenset[str]:
    return frozenset(re.findall(r'"(GLEANER_[A-Z0-9_]+)"', (ROOT / "gleaner" / "shared" / "config.py").read_text()))


def unknown_variables(names: Iterable[object]) -> set[str]:
    return {n for n in names if isinstance(n, str) and n.startswith("GLEANER_")} - known_variables()
