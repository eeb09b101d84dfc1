"""Checks shared by the request validators (jobs, sites): the error they raise and the integer range check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Invalid(ValueError):
    """A field's value is wrong; the message says how, `field` names a nested member when it is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def integer(low: int, high: int) -> Callable[[Any], int]:
    """A converter accepting whole numbers from `low` to `high` (booleans are not numbers here)."""

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"must be an integer from {low} to {high}")
        return value

    return convert
