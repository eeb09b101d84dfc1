"""Job priorities: the numbers 0-9 (9 runs first), the names `high`, `normal` and `low` (seed 004) and the band
each number belongs to (pure)."""

from __future__ import annotations

from typing import Any, Final

from gleaner.shared.field_checks import Invalid, integer

LOWEST: Final = 0
HIGHEST: Final = 9
# a name is the number it stands for: `low` is the default priority, so a job asked to be low never overtakes
# one that asked for nothing; `normal` runs ahead of both, `high` ahead of everything
NAMED: Final = {"high": 9, "normal": 5, "low": 0}
# every number belongs to one band (GET /queues counts them), each band holds the number of its name
BANDS: Final = {"high": range(7, 10), "normal": range(4, 7), "low": range(0, 4)}
_number = integer(LOWEST, HIGHEST)


def priority(value: Any) -> int:
    """A converter accepting 0-9 or a name (`high`, `normal`, `low`) and answering the number."""
    if isinstance(value, str):
        named = NAMED.get(value)
        if named is None:
            raise Invalid(f"must be an integer from {LOWEST} to {HIGHEST} or one of high, normal, low")
        return named
    try:
        return _number(value)
    except Invalid:
        raise Invalid(f"must be an integer from {LOWEST} to {HIGHEST} or one of high, normal, low") from None


def band(number: int) -> str:
    """The band (`high`, `normal` or `low`) a priority number belongs to."""
    return next(name for name, numbers in BANDS.items() if number in numbers)
