"""Plain-text tables and key/value blocks for the operator commands (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

MAX_CELL = 60
Column = tuple[str, Callable[[Mapping[str, Any]], Any]]


def field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda row: row.get(name)


def cell(value: Any) -> str:
    """None as '-', structures as compact JSON, everything cut to one line of MAX_CELL characters."""
    if value is None:
        text = "-"
    elif isinstance(value, dict | list):
        text = orjson.dumps(value).decode()
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """Left-aligned columns under a header; '(none)' when there are no rows."""
    if not rows:
        return "(none)"
    grid = [[header for header, _ in columns]] + [[cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in grid)


def block(item: Mapping[str, Any], names: Sequence[str]) -> str:
    """`name: value` lines, names aligned."""
    width = max(len(n) for n in names)
    return "\n".join(f"{n.ljust(width)}  {cell(item.get(n))}" for n in names)


def tree_line(job: Mapping[str, Any]) -> str:
    return f"{job['id']} {job['kind']} {job['state']}"


def tree_lines(nodes: Sequence[tuple[int, Mapping[str, Any]]]) -> list[str]:
    """A job tree as indented lines: (depth, job) pairs in depth-first order, the root at depth 0."""
    return [("  " * (depth - 1) + "└ " if depth else "") + tree_line(job) for depth, job in nodes]
