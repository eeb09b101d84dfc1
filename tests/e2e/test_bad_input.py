"""Every bad request gets a 4xx problem+json naming the problem, never a 500 (issue 2, acceptance 9 and 10)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.contract import checked_session
from tests.support.stack import Api, Stack

PROBLEM = "application/problem+json"


async def raw(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, str, Any]:
    async with api.session.request(method, api.base_url + path, **kwargs) as response:
        body = await response.json(content_type=None) if response.content_length != 0 else None
        return response.status, response.headers.get("Content-Type", ""), body


async def status_of(api: Api, method: str, path: str) -> int:
    """The status alone (a GET /events stream is ended after 0.1 s; its body is no JSON)."""
    params = {"duration_s": "0.1"} if path == "/events" else None
    async with api.session.request(method, api.base_url + path, json={}, params=params) as response:
        await response.read()
        return response.status


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": "noop", "colour": "red"}, "colour"),
        ({"kind": 5}, "kind"),
        ({"kind": "noop", "payload": {}, "priority": 10}, "priority"),
        ({"kind": "noop", "priority": "urgent"}, "priority"),
        ({"kind": "noop", "queue": "no-such-queue"}, "queue"),
        ({"kind": "no.such.kind"}, "kind"),
        ({"kind": "noop", "max_attempts": 0}, "max_attempts"),
        ({"kind": "noop", "timeout_s": -1}, "timeout_s"),
        ({"kind": "noop", "run_at": "yesterday-ish"}, "run_at"),
        ({"kind": "noop", "run_at": "2030-01-01T00:00:00Z", "delay_s": 5}, "delay_s"),
        ({"kind": "http.fetch", "payload": {"url": "http://127.0.0.1/admin"}}, "payload.url"),
    ],
)
async def test_an_invalid_job_is_a_422_naming_the_field(gateway_api: Api, body: dict[str, Any], field: str) -> None:
    status, ctype, problem = await raw(gateway_api, "POST", "/jobs", json=body)
    assert status == 422, problem
    assert ctype.startswith(PROBLEM)
    assert any(error["field"] == field for error in problem["errors"]), problem


async def test_a_bad_item_in_a_batch_is_named_by_its_index_and_nothing_is_stored(gateway_api: Api) -> None:
    jobs = [{"kind": "noop"}, {"kind": "noop", "priority": 12}]
    status, _, problem = await raw(gateway_api, "POST", "/jobs/batch", json={"jobs": jobs})
    assert status == 422
    assert any(error["field"].startswith("jobs[1]") for error in problem["errors"]), problem
    status, listing = await gateway_api.request("GET", "/jobs")
    assert status == 200 and listing["jobs"] == []


async def test_malformed_json_oversize_bodies_and_unknown_routes_are_problems(gateway_api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    status, ctype, problem = await raw(gateway_api, "POST", "/jobs", data=b'{"kind": "noop",', headers=headers)
    assert (status, ctype.startswith(PROBLEM)) == (400, True), problem
    huge = b'{"kind": "noop", "payload": {"x": "' + b"a" * (5 * 1024 * 1024) + b'"}}'
    status, ctype, _ = await raw(gateway_api, "POST", "/jobs", data=huge, headers=headers)
    assert (status, ctype.startswith(PROBLEM)) == (413, True)
    status, ctype, _ = await raw(gateway_api, "GET", "/jobs/999999")
    assert (status, ctype.startswith(PROBLEM)) == (404, True)
    status, ctype, _ = await raw(gateway_api, "GET", "/jobs/not-a-number")
    assert status in (400, 404) and ctype.startswith(PROBLEM)
    status, ctype, _ = await raw(gateway_api, "DELETE", "/jobs")
    assert (status, ctype.startswith(PROBLEM)) == (405, True)
    status, _, problem = await raw(gateway_api, "GET", "/jobs", params={"page_size": "0"})
    assert status == 422 and problem["errors"][0]["field"] == "page_size"
    status, _, _ = await raw(gateway_api, "GET", "/jobs", params={"page_token": "garbage"})
    assert status in (400, 422)


async def test_a_missing_or_wrong_token_is_401_and_a_missing_scope_403(stack: Stack, gateway_api: Api) -> None:
    async with checked_session() as anonymous:
        async with anonymous.post(gateway_api.base_url + "/jobs", json={"kind": "noop"}) as response:
            assert response.status == 401
            assert response.headers["Content-Type"].startswith(PROBLEM)
        wrong = {"Authorization": "Bearer nope"}
        async with anonymous.get(gateway_api.base_url + "/jobs", headers=wrong) as response:
            assert response.status == 401
    created = await stack.run_cli("apikey", "create", "--name", "reader", "--scopes", "jobs:read")
    key = created.strip().splitlines()[-1].split()[-1]
    reader = Api(gateway_api.base_url.removesuffix("/api/v1"), token=key)
    try:
        status, _ = await reader.request("GET", "/jobs")
        assert status == 200
        status, problem = await reader.request("POST", "/jobs", json={"kind": "noop"})
        assert status == 403, problem
        status, _ = await reader.request("GET", "/dead-letters")
        assert status in (200, 403)
        status, _ = await reader.request("POST", "/dead-letters/requeue", json={})
        assert status == 403
    finally:
        await reader.close()


async def test_the_openapi_document_lists_exactly_the_served_routes(gateway_api: Api) -> None:
    async with checked_session() as anonymous, anonymous.get(gateway_api.base_url + "/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert "/jobs" in paths and "/jobs/{id}" in paths and "/dead-letters" in paths
    for path, operations in paths.items():
        concrete = path.replace("{id}", "1").replace("{name}", "x")
        for method in set(operations) & {"get", "post", "put", "delete", "patch"}:
            status = await status_of(gateway_api, method.upper(), concrete)
            assert status != 405, (method, path)
            if "{" not in path:
                assert status != 404, (method, path)


async def test_a_local_url_is_a_422_naming_the_variable_that_lifts_it_and_the_gateway_honours_it(
    stack: Stack, api_factory: type[Api]
) -> None:
    strict = api_factory((await stack.start("gateway", name="strict")).url)
    job = {"kind": "http.fetch", "payload": {"url": "http://127.0.0.1:8000/page"}}
    status, problem = await strict.request("POST", "/jobs", json=job)
    assert status == 422
    (error,) = problem["errors"]
    assert error["field"] == "payload.url"
    assert "GLEANER_FETCH_ALLOW_PRIVATE=1 on the gateway and the workers allows it" in error["message"]

    relaxed = api_factory((await stack.start("gateway", name="relaxed", GLEANER_FETCH_ALLOW_PRIVATE="1")).url)
    status, created = await relaxed.request("POST", "/jobs", json=job)
    assert (status, created["kind"]) == (202, "http.fetch")
