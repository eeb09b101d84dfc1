"""How the operator commands print: tables, key/value blocks and API problems (pure)."""

from __future__ import annotations

from gleaner.errors import api_error
from gleaner.services.operator.tables import MAX_CELL, block, cell, field, table


def test_a_table_aligns_its_columns_under_the_header() -> None:
    rows = [{"id": 1, "state": "queued"}, {"id": 123, "state": None}]

    text = table(rows, [("ID", field("id")), ("STATE", field("state"))])

    assert text.splitlines() == ["ID   STATE", "1    queued", "123  -"]


def test_an_empty_table_says_so() -> None:
    assert table([], [("ID", field("id"))]) == "(none)"


def test_cells_are_one_line_json_for_structures_and_cut_when_long() -> None:
    assert cell({"a": [1, 2]}) == '{"a":[1,2]}'
    assert cell("two\nlines") == "two lines"
    long = cell("x" * 500)
    assert len(long) == MAX_CELL and long.endswith("…")


def test_a_block_lines_up_names_and_values() -> None:
    assert block({"id": 7, "state": "failed"}, ["id", "state"]).splitlines() == ["id     7", "state  failed"]


def test_a_problem_reads_as_one_line_with_its_field_errors() -> None:
    problem = {
        "title": "Unprocessable Content",
        "detail": "invalid fields: kind",
        "errors": [{"field": "kind", "message": "unknown kind"}],
    }

    # the operator commands print the client's error as it reads
    assert str(api_error(422, problem)) == "HTTP 422 Unprocessable Content: invalid fields: kind (kind: unknown kind)"
    assert str(api_error(502, "bad gateway")) == "HTTP 502 Bad Gateway"
