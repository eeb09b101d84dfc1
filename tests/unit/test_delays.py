"""Delays are spelled in binary so that a message waits only in the levels whose bit is set."""

from __future__ import annotations

import pytest

from gleaner.shared import delays


def test_a_delay_rounds_up_to_whole_units() -> None:
    assert delays.delay_units(0, 0.1) == 0
    assert delays.delay_units(0.01, 0.1) == 1
    assert delays.delay_units(0.3, 0.1) == 3
    assert delays.delay_units(0.31, 0.1) == 4


def test_the_routing_key_spells_the_delay_top_level_first() -> None:
    assert delays.routing_key(5, 4, "default") == "0.1.0.1.default"
    assert delays.routing_key(0, 2, "q") == "0.0.q"


def test_a_delay_that_does_not_fit_the_levels_is_refused() -> None:
    with pytest.raises(ValueError):
        delays.routing_key(16, 4, "q")


def test_level_patterns_select_exactly_their_bit() -> None:
    set_pattern, clear_pattern = delays.level_patterns(1, 4)
    assert set_pattern == "*.*.1.*.#"
    assert clear_pattern == "*.*.0.*.#"
    assert delays.deliver_pattern(3, "default") == "*.*.*.default"


@pytest.mark.parametrize("units", [1, 2, 3, 60, 1023])
def test_walking_the_levels_waits_exactly_the_delay(units: int) -> None:
    levels = 10
    bits = delays.routing_key(units, levels, "q").split(".")[:levels]
    waited = sum(1 << level for level, bit in zip(range(levels - 1, -1, -1), bits, strict=True) if bit == "1")
    assert waited == units
