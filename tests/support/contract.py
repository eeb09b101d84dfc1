"""The API contract in tests: every answer the gateway gives a test is checked against the OpenAPI document.

Test HTTP sessions come from here (`checked_session`, and `Api` in `tests/support/stack.py`); they carry a client
middleware that resolves the operation by method and path template and fails the request with `ContractViolation`
when the status is not documented for it, the content type is not, or the body does not match the schema.
A request may opt out with `middlewares=UNCHECKED` — only for raw garbage whose answer is not the API's.
`gleaner.Client` and `AsyncClient` get the same check through `CheckedTransport` and `CheckedAsyncTransport`.
Only the gateways the tests start (`Service.start` registers them) are checked: Prometheus answers under /api/v1
too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gleaner.services.gateway.openapi import document

API = "/api/v1"
DOCUMENT_URI = "urn:gleaner:openapi"
METHODS = ("get", "put", "post", "delete", "patch")
# the per-request `middlewares=` value that skips the check (aiohttp's own per-request override)
UNCHECKED: tuple[()] = ()
MAX_ERRORS = 5
# host:port of every gateway the tests started (Service.start adds them)
GATEWAYS: set[str] = set()


class ContractViolation(AssertionError):
    """The gateway answered something its OpenAPI document does not allow."""


@dataclass(frozen=True, slots=True)
class Route:
    """One documented path: its template, a regex matching concrete paths, and its operations by method."""

    template: str
    pattern: re.Pattern[str]
    pointer: str
    operations: Mapping[str, Any]

    @property
    def literal_segments(self) -> int:
        return sum(1 for segment in self.template.split("/") if "{" not in segment)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the gateway sent back, as much of it as the contract speaks about."""

    method: str
    path: str
    status: int
    content_type: str
    headers: Mapping[str, str]
    body: bytes

    def describe(self) -> str:
        return f"{self.method} {API}{self.path} answered {self.status} ({self.content_type or 'no content type'})"


def _pointer(*parts: str) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _template_regex(template: str) -> re.Pattern[str]:
    pieces = re.split(r"(\{[^}/]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in pieces) + "$")


class Contract:
    """The OpenAPI document as a checker of answers."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(dict(doc), default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self.routes = [
            Route(template, _template_regex(template), _pointer("paths", template), item)
            for template, item in doc["paths"].items()
        ]

    def check(self, answer: Answer) -> None:
        """Raise ContractViolation naming the operation and every mismatch; None when the answer conforms."""
        # the most literal template wins, as in the gateway's router: `/jobs/batch` is never `/jobs/{id}`
        routes = [route for route in self.routes if route.pattern.match(answer.path)]
        route = max(routes, key=lambda r: r.literal_segments, default=None)
        if route is None or answer.method.lower() not in route.operations:
            self._check_unrouted(answer, routes)
            return
        self._check_operation(answer, route)

    def _check_unrouted(self, answer: Answer, routes: list[Route]) -> None:
        """No operation: only the router's 404 (no such path) or 405 (path without this method) as problems."""
        expected = 405 if routes else 404
        if answer.status != expected:
            raise ContractViolation(f"{answer.describe()}: no documented operation; expected a {expected} problem")
        self._check_body(answer, "#/components/schemas/Problem", "application/problem+json", "the Problem schema")

    def _check_operation(self, answer: Answer, route: Route) -> None:
        method = answer.method.lower()
        operation = route.operations[method]
        where = _pointer("paths", route.template, method, "responses")
        responses = operation["responses"]
        key = next((k for k in (str(answer.status), f"{answer.status // 100}XX", "default") if k in responses), None)
        if key is None:
            documented = ", ".join(sorted(responses))
            raise ContractViolation(
                f"{answer.describe()}: status {answer.status} is not documented for "
                f"{method.upper()} {route.template} (documented: {documented})\nbody: {answer.body[:500]!r}"
            )
        response, where = self._resolve(responses[key], f"{where}/{key}")
        self._check_headers(answer, response, route.template)
        content = response.get("content")
        if not content:
            if answer.body:
                raise ContractViolation(f"{answer.describe()}: documented without a body, got {answer.body[:200]!r}")
            return
        media = answer.content_type.split(";")[0].strip().lower()
        if media not in content:
            raise ContractViolation(f"{answer.describe()}: content type {media!r} is not one of {sorted(content)}")
        what = f"the {key} {media} schema of {method.upper()} {route.template}"
        self._check_body(answer, f"#{where}/content/{_pointer(media)[1:]}/schema", media, what)

    def _resolve(self, response: Mapping[str, Any], where: str) -> tuple[Mapping[str, Any], str]:
        while "$ref" in response:
            where = response["$ref"].removeprefix("#")
            response = self._at(where)
        return response, where

    def _at(self, pointer: str) -> Any:
        node: Any = self.doc
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _check_headers(self, answer: Answer, response: Mapping[str, Any], template: str) -> None:
        missing = [
            name
            for name, header in response.get("headers", {}).items()
            if header.get("required") and name.lower() not in {h.lower() for h in answer.headers}
        ]
        if missing:
            raise ContractViolation(f"{answer.describe()}: headers {missing} are required for {template}")

    def _check_body(self, answer: Answer, schema_ref: str, media: str, what: str) -> None:
        if not answer.content_type.split(";")[0].strip().lower() == media:
            raise ContractViolation(f"{answer.describe()}: expected content type {media}")
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError as exc:
            raise ContractViolation(f"{answer.describe()}: body is not JSON ({exc}): {answer.body[:200]!r}") from None
        errors = list(self._errors(schema_ref, data))
        if errors:
            details = "\n".join(f"  at {_json_path(e)}: {e.message}" for e in errors[:MAX_ERRORS])
            raise ContractViolation(
                f"{answer.describe()}: the body does not match {what}\n{details}\nbody: {answer.body[:1000]!r}"
            )

    def check_schema(self, schema_ref: str, data: Any, what: str) -> None:
        """`data` (a message that is no HTTP answer: an event of a stream) against a schema of the document."""
        errors = list(self._errors(schema_ref, data))
        if errors:
            details = "\n".join(f"  at {_json_path(e)}: {e.message}" for e in errors[:MAX_ERRORS])
            raise ContractViolation(f"{what} does not match {schema_ref}\n{details}\ndata: {data!r:.1000}")

    def _errors(self, schema_ref: str, data: Any) -> Iterator[ValidationError]:
        validator = _validator(self, schema_ref)
        return iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)))


@functools.lru_cache(maxsize=256)
def _validator(contract: Contract, schema_ref: str) -> Draft202012Validator:
    schema = {"$ref": DOCUMENT_URI + schema_ref}
    return Draft202012Validator(schema, registry=contract.registry, format_checker=FormatChecker())


def _json_path(error: ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


@functools.cache
def contract() -> Contract:
    """The document the gateway serves, as a checker (loaded once per test session)."""
    return Contract(document())


def gateway_started(url: str) -> None:
    GATEWAYS.add(_origin(url))


def _origin(url: object) -> str:
    parsed = httpx.URL(str(url))
    return f"{parsed.host}:{parsed.port}"


def _checked(url: object, path: str, content_type: str) -> bool:
    """An answer of a gateway the tests started, under /api/v1, that is not a stream (nothing to read whole)."""
    return path.startswith(API + "/") and _origin(url) in GATEWAYS and not content_type.startswith("text/event-stream")


def _check(method: str, path: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
    answer = Answer(method, path.removeprefix(API), status, headers.get("Content-Type", ""), dict(headers), body)
    contract().check(answer)


async def check_middleware(
    request: aiohttp.ClientRequest, handler: aiohttp.client_middlewares.ClientHandlerType
) -> aiohttp.ClientResponse:
    """A client middleware: answers to /api/v1 paths must conform; others (/metrics, /readyz) pass unchecked."""
    response = await handler(request)
    path = request.url.raw_path
    if _checked(request.url, path, response.headers.get("Content-Type", "")):
        body = await response.read()  # kept by aiohttp: the caller reads it again
        _check(request.method, path, response.status, response.headers, body)
    return response


def _httpx_path(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii").split("?", 1)[0]


class CheckedTransport(httpx.HTTPTransport):
    """An httpx transport (for `gleaner.Client`) that checks every answer of the gateway's API."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        path = _httpx_path(request)
        if _checked(request.url, path, response.headers.get("Content-Type", "")):
            _check(request.method, path, response.status_code, response.headers, response.read())
        return response


class CheckedAsyncTransport(httpx.AsyncHTTPTransport):
    """An httpx transport (for `gleaner.AsyncClient`) that checks every answer of the gateway's API."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        path = _httpx_path(request)
        if _checked(request.url, path, response.headers.get("Content-Type", "")):
            _check(request.method, path, response.status_code, response.headers, await response.aread())
        return response


def checked_session(**kwargs: Any) -> aiohttp.ClientSession:
    """An aiohttp session whose every answer from the gateway's API is checked against the document."""
    return aiohttp.ClientSession(middlewares=(check_middleware,), **kwargs)
