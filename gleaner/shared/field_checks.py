"""Request validation, one helper per shape: integers, numbers, text, timestamps, path ids, query parameters and
JSON documents, and the reader that takes a body's members through them collecting every problem.

Each refuses at the boundary what PostgreSQL (or the JSON encoder) would refuse later: NUL characters, instants
outside the range both Python and PostgreSQL represent, integers past 64 bits, non-finite numbers, documents
nested too deep. A grouped statement then never meets a value that fails it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from gleaner.shared.errors import field_error

# how deep a JSON request body may nest (the body itself is level 1); past it a 422 names the member
MAX_JSON_DEPTH = 64
# the integers orjson reads exactly (int64 and uint64); it would turn any other into an approximate float
MIN_INT, MAX_INT = -(2**63), 2**64 - 1
# every instant a job, schedule or filter may name, after its UTC offset is applied: what a Python datetime
# holds (PostgreSQL's range is wider, so anything inside fits both)
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
MAX_ID = 2**63 - 1
# ASCII digits only: str.isdigit() and int() also take "²", "١٢" and "1_0"
DECIMAL_ID = re.compile(r"^[1-9][0-9]{0,18}$", re.ASCII)
MAX_REPORTED = 20
# query parameters are ASCII decimals: int() and float() would also take "١٢", "1_0", "nan" and "inf"
QUERY_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)
QUERY_NUMBER = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?", re.ASCII)
MemberCheck = Callable[[Any], list[tuple[str, str]]]


class Invalid(ValueError):
    """A field's value is wrong; the message says how, `field` names a nested member when it is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotJSON(ValueError):
    """A document that is not JSON at all (a syntax error, bad UTF-8)."""


class InvalidJSON(ValueError):
    """Well-formed JSON that breaks a boundary rule; `errors` are (member path, message), paths like `a.b[2]`."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


def integer(low: int, high: int) -> Callable[[Any], int]:
    """A converter accepting whole numbers from `low` to `high` (booleans are not numbers here).

    `5.0` is the integer 5, as JSON Schema (and so the OpenAPI document) counts it.
    """

    def convert(value: Any) -> int:
        whole = whole_number(value)
        if whole is None or not low <= whole <= high:
            raise Invalid(f"must be an integer from {low} to {high}")
        return whole

    return convert


def whole_number(value: Any) -> int | None:
    """`value` as an int when it is a JSON integer (`5` or `5.0`), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value if isinstance(value, int) else None


def number(low: float, high: float, *, exclusive_low: bool = False) -> Callable[[Any], float]:
    """A converter accepting finite numbers from `low` (or above it) to `high`, as floats."""
    bound = f"above {low:g}" if exclusive_low else f"from {low:g}"

    def convert(value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not (value > low if exclusive_low else value >= low) or value > high:
            raise Invalid(f"must be a number {bound} to {high:g}")
        return float(value)

    return convert


def text(pattern: re.Pattern[str], what: str) -> Callable[[Any], str]:
    """A converter accepting strings that match `pattern` (`what` describes it in the error)."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value) or "\x00" in value:
            raise Invalid(f"must be a string: {what}")
        return value

    return convert


def query_integer(low: int, high: int) -> Callable[[str], int]:
    """A converter of query text to a whole number from `low` to `high`."""

    def convert(raw: str) -> int:
        if QUERY_INTEGER.fullmatch(raw) is None or not low <= int(raw) <= high:
            raise Invalid(f"must be an integer from {low} to {high}")
        return int(raw)

    return convert


def query_number(low: float, high: float, *, exclusive_low: bool = False) -> Callable[[str], float]:
    """A converter of query text to a finite number from `low` (or above it) to `high`."""
    within = number(low, high, exclusive_low=exclusive_low)

    def convert(raw: str) -> float:
        if QUERY_NUMBER.fullmatch(raw) is None:
            within(None)  # raises with the range
        return within(float(raw))

    return convert


def query_boolean(raw: str) -> bool:
    """A converter of query text to a boolean: `true` or `false`, nothing else."""
    if raw not in ("true", "false"):
        raise Invalid("must be true or false")
    return raw == "true"


class FieldReader:
    """Reads a JSON object's members through converters, collecting every problem (the field under `prefix`,
    the converter's message) instead of stopping at the first; `errors` may be shared with the caller."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "", errors: list[dict[str, str]] | None = None) -> None:
        self.data = data
        self.prefix = prefix
        self.errors: list[dict[str, str]] = [] if errors is None else errors

    def fail(self, name: str, message: str) -> None:
        self.errors.append(field_error(self.prefix + name, message))

    def failed(self, *names: str) -> bool:
        if not self.errors:
            return False
        wanted = {self.prefix + name for name in names}
        return any(error["field"] in wanted for error in self.errors)

    def get(self, name: str, convert: Callable[[Any], Any], *, default: Any, required: bool = False) -> Any:
        """The member through `convert`; absent or null: `default` (a problem when `required`); bad: a problem
        (naming the nested member the converter names, if any) and `default`."""
        value = self.data.get(name)
        if value is None:
            if required:
                self.fail(name, "is required")
            return default
        try:
            return convert(value)
        except Invalid as exc:
            self.fail(exc.field or name, str(exc))
            return default

    def present(self, converters: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
        """The converted values of the members present and valid (null means left out)."""
        values = {name: self.get(name, convert, default=_ABSENT) for name, convert in converters.items()}
        return {name: value for name, value in values.items() if value is not _ABSENT}


_ABSENT = object()


def members(converters: Mapping[str, Callable[[Any], Any]], *, closed: bool = True) -> MemberCheck:
    """A check of a JSON object's members: each present (not null) member through its converter, and when
    `closed` no other member. Returns (member, message) pairs, empty when the object is fine."""

    def check(value: Any) -> list[tuple[str, str]]:
        if not isinstance(value, dict):
            return [("", "must be a JSON object")]
        errors = [(key, "unknown field") for key in sorted(set(value) - set(converters))] if closed else []
        for key, convert in converters.items():
            if value.get(key) is not None:
                try:
                    convert(value[key])
                except Invalid as exc:
                    errors.append((exc.field or key, str(exc)))
        return errors

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def string(max_length: int) -> Callable[[Any], str]:
    """A converter accepting free text of 1 to `max_length` characters (no NUL: PostgreSQL's text refuses it)."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or not 0 < len(value) <= max_length or "\x00" in value:
            raise Invalid(f"must be a string of 1 to {max_length} characters")
        return value

    return convert


def timestamp(value: Any) -> datetime:
    """An RFC 3339 timestamp string with a UTC offset, between years 1 and 9999 once the offset is applied."""
    if not isinstance(value, str):
        raise Invalid("must be an RFC 3339 timestamp string")
    return parse_timestamp(value)


def parse_timestamp(raw: str) -> datetime:
    """`timestamp` for text already known to be a string (query parameters); raises Invalid."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise Invalid("must include a timezone (Z or ±hh:mm)")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise Invalid("must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z once its offset is applied")
    return parsed


def path_id(raw: str) -> int | None:
    """A positive id written in ASCII decimal, below 2^63 (a bigint); None for anything else."""
    if DECIMAL_ID.fullmatch(raw) is None:
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def load_json(raw: bytes) -> Any:
    """Parse a JSON document, refusing what PostgreSQL's jsonb or the encoder would refuse later.

    Raises NotJSON for a syntax error and InvalidJSON naming each member that holds a NUL character (in a
    string or a key), an integer outside [-2^63, 2^64), or a key twice, or that nests past MAX_JSON_DEPTH.
    Most bodies pass on orjson's parse and one walk; the rest are read again exactly by the standard library
    (orjson keeps the last of duplicate keys and turns long integers into floats, so it cannot tell).
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise NotJSON(str(exc)) from None
    shape = _Shape.of(value)
    if shape.too_deep:
        raise InvalidJSON(_too_deep(value))
    if shape.plain(raw):
        return value
    exact = _EXACT.decode(raw.decode("utf-8"))
    problems = list(_problems(exact, ""))
    if problems:
        raise InvalidJSON(problems[:MAX_REPORTED])
    return exact


class _Shape:
    """One walk over the parsed tree: its depth, its string tokens, and whether a float may have been an integer."""

    __slots__ = ("big_float", "strings", "too_deep")

    def __init__(self) -> None:
        self.strings = 0
        self.big_float = False
        self.too_deep = False

    @classmethod
    def of(cls, root: Any) -> _Shape:
        shape = cls()
        stack = [(root, 1)]
        while stack:
            node, depth = stack.pop()
            if type(node) is dict:
                shape.strings += len(node)
                items: Any = node.values()
            elif type(node) is list:
                items = node
            else:
                shape.count_scalar(node)
                continue
            if depth > MAX_JSON_DEPTH:
                shape.too_deep = True
                return shape
            for item in items:
                if type(item) is dict or type(item) is list:
                    stack.append((item, depth + 1))
                else:
                    shape.count_scalar(item)
        return shape

    def count_scalar(self, item: Any) -> None:
        if type(item) is str:
            self.strings += 1
        elif type(item) is float and not -(2.0**63) < item < 2.0**63:
            self.big_float = True

    def plain(self, raw: bytes) -> bool:
        """Whether orjson's reading is exact: no escapes (so no NUL, and every quote delimits a string), no float
        that may have been a long integer, and as many strings and keys as the text has (so no duplicate key)."""
        return b"\\" not in raw and not self.big_float and raw.count(b'"') == 2 * self.strings


class _Duplicated(dict[str, Any]):
    """An object that had a key twice (only built to be refused)."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    return value if len(value) == len(pairs) else _Duplicated(pairs, _first_repeated(key for key, _ in pairs))


def _first_repeated(keys: Iterator[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("called only for pairs with a repeated key")


def _no_constants(name: str) -> Any:
    raise NotJSON(f"{name} is not a JSON value")


_EXACT = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_no_constants)


def _problems(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every boundary problem in an exactly read tree of depth at most MAX_JSON_DEPTH."""
    if isinstance(node, str):
        if "\x00" in node:
            yield path or "body", "must not contain the NUL character (\\u0000)"
    elif isinstance(node, bool) or node is None:
        return
    elif isinstance(node, int):
        if not MIN_INT <= node <= MAX_INT:
            yield path or "body", "integer out of range: integers must lie in [-2^63, 2^64)"
    elif isinstance(node, float):
        if not math.isfinite(node):
            yield path or "body", "must be a finite number"
    elif isinstance(node, dict):
        yield from _object_problems(node, path)
    else:
        for index, item in enumerate(node):
            yield from _problems(item, f"{path}[{index}]")


def _object_problems(node: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, _Duplicated):
        yield _join(path, node.key), "appears twice in the same object (duplicate keys are refused)"
    for key, item in node.items():
        where = _join(path, key)
        if "\x00" in key:
            yield where.replace("\x00", "\\u0000"), "keys must not contain the NUL character (\\u0000)"
        yield from _problems(item, where)


def _too_deep(root: Any) -> list[tuple[str, str]]:
    """The path to the first container nested past MAX_JSON_DEPTH (iterative: the tree may be 1,000 deep)."""
    stack: list[tuple[Any, int, str]] = [(root, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return [(path or "body", f"nests deeper than {MAX_JSON_DEPTH} levels")]
        members = node.items() if isinstance(node, dict) else enumerate(node)
        for name, child in members:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, f"{path}[{name}]" if isinstance(name, int) else _join(path, name)))
    return []


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
