"""Rows as the shaping code reads them, and instants as the API writes them (pure)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, Protocol


class Row(Protocol):
    """A database record or a dict: anything indexable by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


@functools.lru_cache(maxsize=4096)
def timestamp(value: datetime | None) -> str | None:
    """Fixed-width RFC 3339 UTC, so timestamps also sort as strings.

    Memoized: the rows of one batch share their transaction's `created_at`, `updated_at` and mostly
    `run_at`, so a 1,000-job response formats three values instead of three thousand.
    """
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is a third cheaper than strftime; a batch response renders thousands of these
    return value.isoformat(timespec="microseconds")[:-6] + "Z"
