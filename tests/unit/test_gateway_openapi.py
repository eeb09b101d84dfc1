"""The OpenAPI document: valid OpenAPI 3.1, the same routes as the code, the errors every request can meet, and the
values of this deployment (queues, kinds) in the document a gateway serves."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from gleaner.services.gateway.app import create_app
from gleaner.services.gateway.openapi import MARKER, document, served_bytes, with_values
from gleaner.services.gateway.pagination import PageTokens
from gleaner.services.gateway.routes import API
from gleaner.shared.config import Config

METHODS = {"get", "post", "put", "patch", "delete"}
# what any authenticated request may meet: unparsable, no key, a key without the scope, past its rate, no database
EVERY_REQUEST = {"400", "401", "403", "429", "503"}
# what any request with a body may meet: not JSON, too large, field errors
EVERY_BODY = {"400", "413", "422"}


def served() -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for route in create_app(Config()).router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith(API) and route.method.lower() in METHODS:
            routes.setdefault(path.removeprefix(API), set()).add(route.method.lower())
    return routes


def documented() -> dict[str, set[str]]:
    return {path: set(item) & METHODS for path, item in document()["paths"].items()}


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def served_document() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(served_bytes(("default", "scraping"), ("http.fetch", "noop")))
    return data


def test_every_served_route_is_documented_with_the_same_methods_and_vice_versa() -> None:
    assert served() == documented()


@pytest.mark.parametrize("doc", [document(), served_document()], ids=["repository", "served"])
def test_the_document_is_valid_against_the_openapi_3_1_meta_schema(doc: dict[str, Any]) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []


def test_the_document_is_openapi_3_1_rooted_at_the_api_prefix() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": API}]


def test_every_operation_has_an_id_and_responses() -> None:
    ids = [op["operationId"] for _, _, op in operations(document())]
    assert len(ids) == len(set(ids))
    assert all(op["responses"] for _, _, op in operations(document()))


def test_every_authenticated_operation_documents_the_errors_any_request_can_meet() -> None:
    missing = {
        f"{method.upper()} {path}": sorted(EVERY_REQUEST - set(op["responses"]))
        for path, method, op in operations(document())
        if op.get("security", True) != [] and not set(op["responses"]) >= EVERY_REQUEST
    }
    assert missing == {}


def test_every_operation_with_a_body_documents_malformed_oversized_and_invalid_bodies() -> None:
    missing = {
        f"{method.upper()} {path}": sorted(EVERY_BODY - set(op["responses"]))
        for path, method, op in operations(document())
        if "requestBody" in op and not set(op["responses"]) >= EVERY_BODY
    }
    assert missing == {}


def test_the_served_document_lists_this_gateways_queues_and_kinds() -> None:
    schemas = served_document()["components"]["schemas"]
    assert schemas["QueueChoice"]["enum"] == ["default", "scraping", None]
    assert schemas["KindName"]["enum"] == ["http.fetch", "noop"]
    assert MARKER in document()["components"]["schemas"]["QueueChoice"]
    assert "enum" not in document()["components"]["schemas"]["QueueChoice"]


def test_a_marker_becomes_an_enum_with_null_only_when_the_schema_is_nullable() -> None:
    node = {"a": {MARKER: "q", "type": "string"}, "b": [{MARKER: "q", "type": ["string", "null"]}]}
    assert with_values(node, {"q": ("x",)}) == {
        "a": {MARKER: "q", "type": "string", "enum": ["x"]},
        "b": [{MARKER: "q", "type": ["string", "null"], "enum": ["x", None]}],
    }


def test_a_page_token_the_gateway_issues_matches_the_documented_parameter() -> None:
    token = PageTokens(b"k" * 32).encode(12345, {"kind": "noop"})
    schema = document()["components"]["parameters"]["PageToken"]["schema"]
    assert Draft202012Validator(schema).is_valid(token), token
    assert not Draft202012Validator(schema).is_valid("garbage!")


def test_a_dependency_is_shown_as_a_job_with_its_dependency_outcome() -> None:
    schemas = document()["components"]["schemas"]
    job, dependency = schemas["Job"], schemas["Dependency"]
    assert set(dependency["properties"]) - set(job["properties"]) == {"dependency_outcome"}
    assert all(dependency["properties"][name] == schema for name, schema in job["properties"].items())
    assert dependency["required"] == [*job["required"], "dependency_outcome"]
