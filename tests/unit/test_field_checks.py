"""The boundary checks: what PostgreSQL or the JSON encoder would refuse later is refused, naming the member."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from gleaner.shared.field_checks import (
    MAX_JSON_DEPTH,
    FieldReader,
    Invalid,
    InvalidJSON,
    NotJSON,
    integer,
    load_json,
    number,
    parse_timestamp,
    path_id,
    query_boolean,
    query_integer,
    query_number,
)


def problems(raw: bytes) -> dict[str, str]:
    with pytest.raises(InvalidJSON) as caught:
        load_json(raw)
    return dict(caught.value.errors)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"payload": {"x": "a\\u0000b"}}', "payload.x"),
        (b'{"payload": {"x\\u0000": 1}}', "payload.x\\u0000"),
        (b'{"jobs": [{"kind": "noop"}, {"payload": {"list": ["ok", "\\u0000"]}}]}', "jobs[1].payload.list[1]"),
        (b'"\\u0000"', "body"),
        (b'{"kind": "noop", "kind": "noop"}', "kind"),
        (b'{"payload": {"a" : 1, "a": 2}}', "payload.a"),
        (b'{"jobs": [{"payload": {"b": {"c": 1, "c": 1}}}]}', "jobs[0].payload.b.c"),
        (b'{"n": 18446744073709551616}', "n"),
        (b'{"n": -9223372036854775809}', "n"),
        (b'{"n": [123456789012345678901234567890]}', "n[0]"),
    ],
)
def test_what_postgresql_or_the_encoder_refuses_is_named_by_its_member(raw: bytes, path: str) -> None:
    assert path in problems(raw)


def test_the_largest_exact_integers_and_an_escaped_backslash_pass() -> None:
    assert load_json(b'{"n": 18446744073709551615, "m": -9223372036854775808}') == {"n": 2**64 - 1, "m": -(2**63)}
    assert load_json(b'{"a": "\\\\u0000"}') == {"a": "\\u0000"}
    assert load_json(b'{"f": 1e300, "u": "http://x/\\u00e9"}') == {"f": 1e300, "u": "http://x/é"}


def nested(depth: int) -> bytes:
    """A body `depth` objects deep: the body itself, then its payload and the objects inside it."""
    return b'{"payload": ' + b'{"a": ' * (depth - 2) + b"{}" + b"}" * (depth - 2) + b"}"


def test_nesting_is_refused_past_the_limit_naming_where_even_a_thousand_deep() -> None:
    assert load_json(nested(MAX_JSON_DEPTH))
    [(path, message)] = problems(nested(MAX_JSON_DEPTH + 1)).items()
    assert path.startswith("payload.a.a") and str(MAX_JSON_DEPTH) in message
    assert next(iter(problems(nested(1000)))).startswith("payload.a")


@pytest.mark.parametrize("raw", [b'{"a": 1', b"NaN", b'{"a": Infinity}', b'"\xff"', b"[" * 1100 + b"]" * 1100])
def test_a_syntax_error_is_not_json(raw: bytes) -> None:
    with pytest.raises(NotJSON):
        load_json(raw)


def random_value(rng: random.Random, depth: int) -> Any:
    choice = rng.randrange(7 if depth < 5 else 4)
    if choice == 0:
        return rng.choice(["", "plain", 'quote " inside', "back\\slash", "é ü", "a:b", "\t"])
    if choice == 1:
        return rng.choice([0, -1, 2**63, 2**64 - 1, -(2**63), 10**19])
    if choice == 2:
        return rng.choice([0.5, -1e300, 1e19, 2.0**63])
    if choice == 3:
        return rng.choice([True, False, None])
    if choice in (4, 5):
        return {f"k{rng.randrange(6)}": random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def encodings(value: Any) -> list[bytes]:
    return [orjson.dumps(value), json.dumps(value).encode(), json.dumps(value, ensure_ascii=False, indent=1).encode()]


def test_the_fast_reading_agrees_with_the_exact_one_on_random_documents() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        value = {"payload": random_value(rng, 0)}
        for raw in encodings(value):
            assert load_json(raw) == json.loads(raw)


def test_a_duplicate_key_is_found_however_the_document_is_written() -> None:
    rng = random.Random(12)
    for _ in range(500):
        inner = json.dumps(random_value(rng, 3))
        for raw in (f'{{"a": {inner}, "b": 1, "a": {inner}}}', f'{{"a":{inner},"a" :1}}'):
            assert "a" in problems(raw.encode())


@pytest.mark.parametrize(
    "raw",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2030-01-01T00:00:00", "soon", "2030-13-01T00:00:00Z"],
)
def test_a_timestamp_outside_what_both_python_and_postgresql_hold_is_refused(raw: str) -> None:
    with pytest.raises(Invalid):
        parse_timestamp(raw)


def test_the_extreme_instants_inside_the_range_pass() -> None:
    assert parse_timestamp("9999-12-31T23:59:59Z").year == 9999
    assert parse_timestamp("0001-01-01T00:00:00Z").year == 1
    assert parse_timestamp("0001-01-01T10:00:00+10:00").year == 1


@pytest.mark.parametrize("raw", ["²", "١٢", "1_0", "12\n", " 12", "0", "-1", "9223372036854775808", "", "1e3"])
def test_a_path_id_is_an_ascii_decimal_below_two_to_the_63(raw: str) -> None:
    assert path_id(raw) is None


def test_a_valid_path_id_is_read() -> None:
    assert path_id("42") == 42 and path_id("9223372036854775807") == 2**63 - 1


@pytest.mark.parametrize("value", [1e308, float("inf"), float("nan"), True, "1", None, -0.1])
def test_a_number_converter_refuses_what_is_out_of_range_or_not_a_number(value: Any) -> None:
    with pytest.raises(Invalid):
        number(0, 366 * 86_400.0)(value)


@pytest.mark.parametrize("raw", ["", "abc", "0", "501", "\u0661\u0662", "1_0", " 5", "5.0", "+5"])
def test_a_query_integer_is_an_ascii_decimal_within_its_range(raw: str) -> None:
    with pytest.raises(Invalid, match="must be an integer from 1 to 500"):
        query_integer(1, 500)(raw)
    assert query_integer(1, 500)("500") == 500


@pytest.mark.parametrize("raw", ["", "nan", "inf", "0", "61", "1_0", "\u0661"])
def test_a_query_number_is_finite_ascii_and_within_its_range(raw: str) -> None:
    with pytest.raises(Invalid, match="must be a number above 0 to 60"):
        query_number(0, 60, exclusive_low=True)(raw)
    assert query_number(0, 60, exclusive_low=True)("2.5e1") == 25.0


def test_a_query_boolean_is_true_or_false_spelled_out() -> None:
    assert (query_boolean("true"), query_boolean("false")) == (True, False)
    with pytest.raises(Invalid, match="must be true or false"):
        query_boolean("1")


def test_a_field_reader_collects_every_problem_under_its_prefix_and_names_nested_members() -> None:
    def hours(value: object) -> object:
        raise Invalid("must be HH:MM", "respectful_hours.start")

    reader = FieldReader({"a": 0, "b": "x", "c": {}, "d": None}, "jobs[2].")
    values = reader.present({"a": integer(1, 9), "b": integer(1, 9), "c": hours, "d": integer(1, 9), "e": str})

    assert values == {}
    assert reader.get("e", str, default="fallback", required=True) == "fallback"
    assert reader.errors == [
        {"field": "jobs[2].a", "message": "must be an integer from 1 to 9"},
        {"field": "jobs[2].b", "message": "must be an integer from 1 to 9"},
        {"field": "jobs[2].respectful_hours.start", "message": "must be HH:MM"},
        {"field": "jobs[2].e", "message": "is required"},
    ]
    assert reader.failed("a", "z") and not reader.failed("d")
