"""Reading request bodies and query parameters: malformed JSON is a 400, bad parameters a 422."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

import orjson
from aiohttp import web

from shared.errors import Problem, ValidationProblem, field_error

T = TypeVar("T")


async def read_json(request: web.Request, *, allow_empty: bool = False) -> tuple[bytes, Any]:
    """The raw body and its parsed JSON; aiohttp raises 413 past `client_max_size` while reading."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return raw, {}
        raise Problem(400, "Bad Request", "the request body must be a JSON document")
    try:
        return raw, orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "Bad Request", f"the request body is not valid JSON: {exc}") from None


def query_value(request: web.Request, name: str, convert: Callable[[str], T], message: str) -> T | None:
    """A converted query parameter, None when absent; 422 naming the parameter when `convert` fails.

    An empty value (`?created_before=`) is not a value of the parameter's type: it is refused like any other.
    """
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return convert(raw)
    except ValueError:
        raise ValidationProblem([field_error(name, message)]) from None


def query_choice(request: web.Request, name: str, choices: Collection[str]) -> str | None:
    """A query parameter that takes one of `choices`, None when absent; 422 naming it otherwise (empty too)."""
    raw = request.query.get(name)
    if raw is not None and raw not in choices:
        raise ValidationProblem([field_error(name, f"must be one of {', '.join(sorted(choices))}")])
    return raw


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return convert


def bounded_float(low: float, high: float, *, exclusive_low: bool = False) -> Callable[[str], float]:
    def convert(raw: str) -> float:
        value = float(raw)
        if not (value > low if exclusive_low else value >= low) or not value <= high:
            raise ValueError(raw)
        return value

    return convert


def job_id_param(request: web.Request) -> int:
    try:
        value = int(request.match_info["id"])
    except ValueError:
        raise Problem(404, "Not Found", "job ids are positive integers") from None
    if not 0 < value < 2**63:
        raise Problem(404, "Not Found", "job ids are positive integers")
    return value
