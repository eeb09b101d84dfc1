"""Binary TTL delay levels: which levels a delay passes through, spelled as a routing key (pure)."""

from __future__ import annotations

import math


def delay_units(delay_s: float, unit_s: float) -> int:
    """Round a delay to whole units (at least 1 for any positive delay)."""
    if delay_s <= 0:
        return 0
    return max(1, math.ceil(delay_s / unit_s - 1e-9))


def whole_units_s(delay_s: float, unit_s: float) -> float:
    """A delay rounded up to the whole units it will travel as: what the job really waits (0 stays 0)."""
    return delay_units(delay_s, unit_s) * unit_s if unit_s > 0 else delay_s


def routing_key(units: int, levels: int, queue: str) -> str:
    """Bits of `units` from the top level down, then the target queue: `0.1.1.default`.

    A message waits only in the levels whose bit is set, so a short delay never sits behind a long one.
    """
    if not 0 <= units < (1 << levels):
        raise ValueError(f"{units} units do not fit in {levels} levels")
    bits = ".".join("1" if units >> level & 1 else "0" for level in range(levels - 1, -1, -1))
    return f"{bits}.{queue}"


def level_patterns(level: int, levels: int) -> tuple[str, str]:
    """Topic patterns at level n: (bit set → wait in this level's queue, bit clear → skip to level n-1)."""
    above = ["*"] * (levels - 1 - level)
    below = ["*"] * level
    set_pattern = ".".join([*above, "1", *below, "#"])
    clear_pattern = ".".join([*above, "0", *below, "#"])
    return set_pattern, clear_pattern


def deliver_pattern(levels: int, queue: str) -> str:
    """The pattern on the deliver exchange that routes a finished delay to its work queue."""
    return ".".join(["*"] * levels + [queue])
