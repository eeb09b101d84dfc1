"""GET /jobs?payload=… and ?payload.<key>=… become one JSON containment (pure)."""

from __future__ import annotations

import orjson
import pytest
from multidict import MultiDict

from gleaner.services.gateway.payload_filter import next_after, payload_containment, scan_floor
from gleaner.shared.errors import ValidationProblem


def test_no_payload_parameter_means_no_filter() -> None:
    assert payload_containment(MultiDict({"state": "queued"})) is None


def test_key_parameters_and_a_json_object_merge_into_one_containment() -> None:
    query = MultiDict({"payload": '{"page": 2, "tags": ["a"]}', "payload.ticker": "PETR4"})

    assert orjson.loads(payload_containment(query) or "") == {"page": 2, "tags": ["a"], "ticker": "PETR4"}


@pytest.mark.parametrize("query", [{"payload": "[1]"}, {"payload": "{not json"}, {"payload.": "x"}, {"payload": ""}])
def test_a_payload_filter_that_is_not_an_object_or_has_no_key_is_refused(query: dict[str, str]) -> None:
    with pytest.raises(ValidationProblem) as caught:
        payload_containment(MultiDict(query))
    assert caught.value.errors[0]["field"].startswith("payload")


def test_a_payload_page_looks_at_the_window_of_ids_below_its_start() -> None:
    assert scan_floor(25_000) == 20_001
    assert scan_floor(25_000, window=100) == 24_901
    assert scan_floor(40) == 1, "never below the first id"
    assert scan_floor(None) is None, "an empty table: nothing to look at"


def test_the_next_payload_page_starts_below_the_last_match_or_below_the_window() -> None:
    assert next_after(15_200, more=True, floor=15_001) == 15_200, "a full page: on from its last job"
    assert next_after(15_300, more=False, floor=15_001) == 15_001, "the window ran out: on from below it"
    assert next_after(None, more=False, floor=15_001) == 15_001, "an empty page still goes on"
    assert next_after(30, more=False, floor=1) is None, "the window reached the first id: the last page"
    assert next_after(30, more=False, floor=None) is None, "no window (no payload filter): the last page"
