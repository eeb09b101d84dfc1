"""Jobs per minute by outcome as stacked SVG bars (pure: rows in, rectangles out; the template draws them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

OUTCOMES = ("succeeded", "partial", "failed", "cancelled")
MINUTES = 60
BAR_W = 10
HEIGHT = 120


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    y: float
    width: int
    height: float
    outcome: str
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    totals: dict[str, int]
    peak: int
    width: int = MINUTES * BAR_W
    height: int = HEIGHT


def per_minute(now_minute: datetime, rows: Iterable[tuple[datetime, str, int]]) -> Chart:
    """The last MINUTES minutes up to `now_minute` (inclusive), oldest on the left; unknown states are skipped."""
    first = now_minute - timedelta(minutes=MINUTES - 1)
    counts: dict[tuple[int, str], int] = {}
    for minute, state, jobs in rows:
        slot = int((minute - first).total_seconds() // 60)
        if 0 <= slot < MINUTES and state in OUTCOMES:
            counts[slot, state] = counts.get((slot, state), 0) + jobs
    per_slot = [sum(counts.get((slot, o), 0) for o in OUTCOMES) for slot in range(MINUTES)]
    peak = max(per_slot, default=0)
    scale = HEIGHT / peak if peak else 0.0
    bars: list[Bar] = []
    for slot in range(MINUTES):
        top = float(HEIGHT)
        at = (first + timedelta(minutes=slot)).strftime("%H:%M")
        for outcome in OUTCOMES:
            jobs = counts.get((slot, outcome), 0)
            if jobs:
                top -= jobs * scale
                bars.append(
                    Bar(
                        slot * BAR_W,
                        round(top, 2),
                        BAR_W - 1,
                        round(jobs * scale, 2),
                        outcome,
                        f"{at} {outcome}: {jobs}",
                    )
                )
    totals = {o: sum(counts.get((slot, o), 0) for slot in range(MINUTES)) for o in OUTCOMES}
    return Chart(bars, totals, peak)
