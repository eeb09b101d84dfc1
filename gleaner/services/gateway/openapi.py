"""The OpenAPI 3.1 document kept beside the code, served at /api/v1/openapi.json with this gateway's values.

Schemas marked `"x-gleaner-enum": "<name>"` name values the configuration decides (the queues, the registered job
kinds); the served document lists them as an `enum`, so a client (or schemathesis) knows exactly what this gateway
accepts, and the file in the repository stays the same for every deployment.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from gleaner.services.gateway.context import gateway_of

MARKER = "x-gleaner-enum"


@functools.cache
def document_bytes() -> bytes:
    return resources.files("gleaner.services.gateway").joinpath("openapi.json").read_bytes()


def document() -> dict[str, Any]:
    """The document as kept in the repository (markers, no enums)."""
    data: dict[str, Any] = orjson.loads(document_bytes())
    return data


def with_values(node: Any, values: Mapping[str, Sequence[str]]) -> Any:
    """A copy of `node` in which every marked schema lists its values (and null, when it is nullable)."""
    if isinstance(node, list):
        return [with_values(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: with_values(value, values) for key, value in node.items()}
    name = out.get(MARKER)
    # no values yet (no worker ever registered a kind): the pattern alone describes the field
    if isinstance(name, str) and values.get(name):
        types = out.get("type")
        nullable = types == "null" or (isinstance(types, list) and "null" in types)
        out["enum"] = [*values[name], *([None] if nullable else [])]
    return out


@functools.lru_cache(maxsize=8)
def served_bytes(queues: tuple[str, ...], kinds: tuple[str, ...]) -> bytes:
    values = {"queues": queues, "kinds": kinds}
    return orjson.dumps(with_values(document(), values))


async def serve(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    body = served_bytes(gw.config.queues, tuple(sorted(gw.kinds.rules.known)))
    return web.Response(body=body, content_type="application/json")
