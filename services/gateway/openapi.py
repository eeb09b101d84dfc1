"""The OpenAPI 3.1 document kept beside the code, loaded once and served at /api/v1/openapi.json."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import orjson
from aiohttp import web


@functools.cache
def document_bytes() -> bytes:
    return resources.files("services.gateway").joinpath("openapi.json").read_bytes()


def document() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(document_bytes())
    return data


async def serve(request: web.Request) -> web.Response:
    return web.Response(body=document_bytes(), content_type="application/json")
