"""The gateway is as strict as its OpenAPI document says, and no stricter (issue 11): typed query parameters refuse
an empty value, JSON integers may be written 5.0, an Idempotency-Key is printable ASCII, and `{id}` routes only ids."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gleaner.services.gateway.app import create_app
from gleaner.services.gateway.bodies import query_choice, query_value
from gleaner.services.gateway.dead_letters_api import _bulk_filters
from gleaner.services.gateway.idempotency import check_key
from gleaner.shared.config import Config
from gleaner.shared.errors import ValidationProblem
from gleaner.shared.field_checks import Invalid, integer, query_integer


def request(query: str) -> web.Request:
    return make_mocked_request("GET", f"/api/v1/jobs?{query}")


@pytest.mark.parametrize("query", ["page_size=", "page_size=abc", "page_size=0"])
def test_a_typed_query_parameter_refuses_an_empty_value_like_any_other_bad_one(query: str) -> None:
    with pytest.raises(ValidationProblem) as caught:
        query_value(request(query), "page_size", query_integer(1, 500))
    assert caught.value.errors == [{"field": "page_size", "message": "must be an integer from 1 to 500"}]


def test_an_absent_query_parameter_is_none() -> None:
    assert query_value(request("kind=x"), "page_size", query_integer(1, 500)) is None
    assert query_choice(request("kind=x"), "state", ("queued",)) is None


@pytest.mark.parametrize("query", ["state=", "state=nope"])
def test_a_choice_parameter_takes_only_its_choices(query: str) -> None:
    with pytest.raises(ValidationProblem, match="state"):
        query_choice(request(query), "state", ("queued", "failed"))
    assert query_choice(request("state=failed"), "state", ("queued", "failed")) == "failed"


def test_a_whole_number_written_as_a_float_is_an_integer_as_json_schema_counts_it() -> None:
    assert integer(0, 9)(5.0) == 5
    assert type(integer(0, 9)(5.0)) is int
    for bad in (5.5, True, "5", 10.0):
        with pytest.raises(Invalid):
            integer(0, 9)(bad)
    assert _bulk_filters({"limit": 8787.0})[3] == 8787


@pytest.mark.parametrize("key", ["", "é", "tab\there", "x" * 201])
def test_an_idempotency_key_is_1_to_200_printable_ascii_characters(key: str) -> None:
    with pytest.raises(ValidationProblem, match="Idempotency-Key"):
        check_key(key)
    assert check_key("order 42/a") == "order 42/a"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/jobs/batch", {"POST"}),
        ("DELETE", "/api/v1/dead-letters/requeue", {"POST"}),
        ("OPTIONS", "/api/v1/jobs/batch", {"POST"}),
    ],
)
async def test_a_literal_path_is_never_taken_for_an_id_so_405_lists_only_its_methods(
    method: str, path: str, allowed: set[str]
) -> None:
    app = create_app(Config())
    match = await app.router.resolve(make_mocked_request(method, path))
    assert isinstance(match.http_exception, web.HTTPMethodNotAllowed)
    assert match.http_exception.allowed_methods == allowed


async def test_an_id_that_is_not_a_number_routes_nowhere() -> None:
    app = create_app(Config())
    for path in ("/api/v1/jobs/abc", "/api/v1/schedules/²", "/api/v1/dead-letters/job-x"):
        match = await app.router.resolve(make_mocked_request("GET", path))
        assert isinstance(match.http_exception, web.HTTPNotFound | web.HTTPMethodNotAllowed), path
