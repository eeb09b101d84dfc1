"""GET /jobs?payload=… and ?payload.<key>=… become one JSON containment (pure)."""

from __future__ import annotations

import orjson
import pytest
from multidict import MultiDict

from gleaner.services.gateway.payload_filter import payload_containment
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
