"""The GLEANER_* variable names Gleaner's configuration declares, to catch a misspelled setting in deploy files."""

from __future__ import annotations

from collections.abc import Iterable

from gleaner.shared.config import KNOWN_NAMES


def known_variables() -> frozenset[str]:
    return KNOWN_NAMES


def unknown_variables(names: Iterable[object]) -> set[str]:
    return {n for n in names if isinstance(n, str) and n.startswith("GLEANER_")} - known_variables()
