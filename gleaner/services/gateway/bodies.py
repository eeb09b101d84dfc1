"""Reading request bodies and query parameters: malformed JSON is a 400, bad parameters a 422."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

from aiohttp import web

from gleaner.shared.errors import Problem, ValidationProblem, field_error
from gleaner.shared.field_checks import InvalidJSON, MemberCheck, NotJSON, load_json, path_id

T = TypeVar("T")


async def read_json(request: web.Request, *, allow_empty: bool = False) -> tuple[bytes, Any]:
    """The raw body and its parsed JSON; aiohttp raises 413 past `client_max_size` while reading.

    A syntax error is a 400; NUL characters, duplicate keys, integers past 64 bits and nesting past the limit
    are a 422 naming each member (see gleaner.shared.field_checks.load_json).
    """
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return raw, {}
        raise Problem(400, "Bad Request", "the request body must be a JSON document")
    return raw, json_document(raw, "the request body")


def json_document(raw: bytes, what: str) -> Any:
    """Parsed JSON or the problem: 400 for a syntax error, 422 naming each member that breaks a boundary rule."""
    try:
        return load_json(raw)
    except NotJSON as exc:
        raise Problem(400, "Bad Request", f"{what} is not valid JSON: {exc}") from None
    except InvalidJSON as exc:
        raise ValidationProblem([field_error(path, message) for path, message in exc.errors]) from None


def query_value(request: web.Request, name: str, convert: Callable[[str], T], message: str | None = None) -> T | None:
    """A converted query parameter (field_checks.query_integer, query_number, ...), None when absent; 422 naming
    the parameter when `convert` fails, with `message` or else the converter's own.

    An empty value (`?created_before=`) is not a value of the parameter's type: it is refused like any other.
    """
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return convert(raw)
    except ValueError as exc:  # Invalid, or a converter's own refusal (its message then says nothing useful)
        raise ValidationProblem([field_error(name, message or str(exc))]) from None


def query_choice(request: web.Request, name: str, choices: Collection[str]) -> str | None:
    """A query parameter that takes one of `choices`, None when absent; 422 naming it otherwise (empty too)."""
    raw = request.query.get(name)
    if raw is not None and raw not in choices:
        raise ValidationProblem([field_error(name, f"must be one of {', '.join(sorted(choices))}")])
    return raw


def checked(body: Any, check: MemberCheck) -> dict[str, Any]:
    """A JSON object body that passed `check` (field_checks.members), or a 422 naming each bad member."""
    errors = check(body)
    if errors:
        raise ValidationProblem([field_error(path or "body", message) for path, message in errors])
    return dict(body)


def id_param(request: web.Request, what: str) -> int:
    """The `{id}` of the path: a positive ASCII decimal below 2^63, else 404 (no such resource can exist)."""
    value = path_id(request.match_info["id"])
    if value is None:
        raise Problem(404, "Not Found", f"{what} ids are positive integers")
    return value


def job_id_param(request: web.Request) -> int:
    return id_param(request, "job")
