"""Poison handling (pure): dead-letter records PostgreSQL accepts, and when a failing delivery is given up."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from gleaner.services.worker.dead_letters import MAX_TEXT, json_headers, text
from gleaner.services.worker.flow_failures import FAILURES_HEADER, GIVE_UP, MAX_FAILURES, REQUEUE, RETRY, next_step


def test_header_names_and_values_lose_nul_characters_but_stay_readable() -> None:
    stored = json_headers({"x\x00name": "a\x00b", "raw": b"c\x00d", "list": ["e\x00"]})
    assert stored == {"x\\x00name": "a\\x00b", "raw": "c\\x00d", "list": ["e\\x00"]}
    assert "\\u0000" not in orjson.dumps(stored).decode()


def test_integers_jsonb_cannot_take_through_orjson_become_text() -> None:
    stored = json_headers({"big": 2**70, "fine": 2**62, "negative": -(2**70)})
    assert stored == {"big": str(2**70), "fine": 2**62, "negative": str(-(2**70))}
    orjson.dumps(stored)


def test_deeply_nested_tables_are_cut_to_text_and_long_texts_are_bounded() -> None:
    nested: dict[str, object] = {"leaf": 1}
    for _ in range(50):
        nested = {"n": nested}
    orjson.dumps(json_headers(nested))
    assert len(text("x" * 100_000)) == MAX_TEXT


def test_a_database_or_broker_out_of_reach_requeues_without_counting() -> None:
    assert next_step(ConnectionResetError(), {FAILURES_HEADER: 3}) == (REQUEUE, 3)
    assert next_step(asyncpg.exceptions.CannotConnectNowError("starting up"), None) == (REQUEUE, 0)


def test_any_other_failure_is_counted_and_the_last_allowed_one_gives_up() -> None:
    assert next_step(KeyError("bug"), None) == (RETRY, 1)
    assert next_step(asyncpg.exceptions.DataError("refused"), {FAILURES_HEADER: MAX_FAILURES - 2}) == (
        RETRY,
        MAX_FAILURES - 1,
    )
    assert next_step(ValueError("refused"), {FAILURES_HEADER: MAX_FAILURES - 1}) == (GIVE_UP, MAX_FAILURES)


@pytest.mark.parametrize("forged", [-1, 10**9, "3", True, 2.5])
def test_a_forged_failure_count_counts_as_none(forged: object) -> None:
    assert next_step(KeyError("bug"), {FAILURES_HEADER: forged}) == (RETRY, 1)
