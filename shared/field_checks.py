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
    """A converter accepting whole numbers from `low` to `high` (booleans are not numbers here).

    `5.0` is the integer 5, as JSON Schema (and so the OpenAPI document) counts it.
    """

    def convert(value: Any) -> int:
        whole = whole_number(value)
        if whole is None or not low <= whole <= high:
            raise Invalid(f"must be an integer from {low} to {high}")
        return whole

    return convert


def whole_number(value: Any) -> int | None:
    """`value` as an int when it is a JSON integer (`5` or `5.0`), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value if isinstance(value, int) else None
