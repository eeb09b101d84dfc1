"""The OpenAPI document and the route table agree: every route is documented with its methods, and vice versa."""

from __future__ import annotations

from services.gateway.app import create_app
from services.gateway.openapi import document
from services.gateway.routes import API
from shared.config import Config

METHODS = {"get", "post", "put", "patch", "delete"}


def served() -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for route in create_app(Config()).router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith(API) and route.method.lower() in METHODS:
            routes.setdefault(path.removeprefix(API), set()).add(route.method.lower())
    return routes


def documented() -> dict[str, set[str]]:
    return {path: set(item) & METHODS for path, item in document()["paths"].items()}


def test_every_served_route_is_documented_with_the_same_methods_and_vice_versa() -> None:
    assert served() == documented()


def test_the_document_is_openapi_3_1_rooted_at_the_api_prefix() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": API}]


def test_every_operation_has_an_id_and_responses() -> None:
    ids = [op["operationId"] for item in document()["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(set(ids))
    assert all(op["responses"] for item in document()["paths"].values() for m, op in item.items() if m in METHODS)
