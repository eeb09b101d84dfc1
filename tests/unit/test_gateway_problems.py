"""The error middleware turns every failure into problem+json, with a request id, and never leaks a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gleaner.services.gateway.bodies import read_json
from gleaner.services.gateway.problems import problem_middleware
from gleaner.shared.errors import Problem

PROBLEM = "application/problem+json"


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


async def conflict(request: web.Request) -> web.Response:
    raise Problem(409, "Conflict", "already finished")


async def echo(request: web.Request) -> web.Response:
    _, data = await read_json(request)
    return web.json_response(data)


async def down(request: web.Request) -> web.Response:
    raise ConnectionRefusedError("database")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[problem_middleware], client_max_size=1024)
    app.router.add_get("/boom", boom)
    app.router.add_get("/conflict", conflict)
    app.router.add_post("/echo", echo)
    app.router.add_get("/down", down)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_an_unexpected_exception_is_a_500_problem_quoting_the_request_id(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/boom", headers={"X-Request-Id": "abc"})
    body = await response.json(content_type=None)
    assert response.status == 500 and response.content_type == PROBLEM
    assert "abc" in body["detail"] and "secret" not in body["detail"]
    assert response.headers["X-Request-Id"] == "abc"


async def test_problems_keep_their_status_and_unknown_routes_and_methods_are_problems(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/conflict")
    assert response.status == 409 and (await response.json(content_type=None))["detail"] == "already finished"
    response = await client.get("/nowhere")
    assert response.status == 404 and response.content_type == PROBLEM
    response = await client.delete("/conflict")
    assert response.status == 405 and response.content_type == PROBLEM and "GET" in response.headers["Allow"]


async def test_bad_json_is_400_and_an_oversized_body_413(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.post("/echo", data=b"{nope")
    assert response.status == 400 and response.content_type == PROBLEM
    response = await client.post("/echo", data=b"[" + b"1," * 2000 + b"1]")
    assert response.status == 413 and response.content_type == PROBLEM
    response = await client.post("/echo", data=b'{"a": 1}')
    assert response.status == 200 and "X-Request-Id" in response.headers


async def test_an_unreachable_dependency_is_a_503_with_retry_after(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/down")
    assert response.status == 503 and response.headers["Retry-After"] == "1"
