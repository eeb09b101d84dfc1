"""Setters of a frozen slotted dataclass's fields, refused when the names are not its fields in order."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gleaner.shared.slot_setters import slot_setters


@dataclass(frozen=True, slots=True)
class Pair:
    left: int
    right: str


def test_the_setters_build_what_the_constructor_builds() -> None:
    set_left, set_right = slot_setters(Pair, ("left", "right"))
    made: Pair = object.__new__(Pair)
    set_left(made, 1)
    set_right(made, "x")
    assert made == Pair(1, "x")


def test_names_out_of_order_or_missing_a_field_are_refused() -> None:
    with pytest.raises(TypeError, match="declares the fields"):
        slot_setters(Pair, ("right", "left"))
    with pytest.raises(TypeError, match="declares the fields"):
        slot_setters(Pair, ("left",))
