"""The console's way to the API: this gateway's own /api/v1 over HTTP, with the signed-in user's key.

Going through the API (rather than its stores) keeps one set of rules: validation, scopes, idempotency and the
problem+json errors are the API's, and the console can only do what its user's key may do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from gleaner.services.gateway.problems import REQUEST_ID_HEADER
from gleaner.shared import logging as gleaner_logging
from gleaner.shared.errors import Problem

API = "/api/v1"
TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    data: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """What went wrong, as the API's problem says it (field errors included)."""
        if not isinstance(self.data, dict):
            return f"the API answered {self.status}"
        detail = str(self.data.get("detail") or self.data.get("title") or f"the API answered {self.status}")
        errors = self.data.get("errors")
        if isinstance(errors, list) and errors:
            fields = "; ".join(f"{e.get('field', '?')}: {e.get('message', '')}" for e in errors if isinstance(e, dict))
            detail = f"{detail} ({fields})"
        return detail


def own_base_url(request: web.Request) -> str:
    """The address this request arrived on: the gateway itself, whatever GLEANER_HTTP_HOST binds."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        raise Problem(503, "Service Unavailable", "the console cannot tell which address the gateway listens on")
    host, port = str(sockname[0]), int(sockname[1])
    if isinstance(ipaddress.ip_address(host.split("%")[0]), ipaddress.IPv6Address):
        host = f"[{host}]"
    return f"http://{host}:{port}{API}"


class ApiClient:
    """One keep-alive connection pool for every console request of this gateway."""

    def __init__(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S), json_serialize=lambda v: orjson.dumps(v).decode()
        )

    async def close(self) -> None:
        await self._session.close()

    async def call(
        self,
        request: web.Request,
        key: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Answer:
        headers = {"Authorization": f"Bearer {key}", REQUEST_ID_HEADER: gleaner_logging.request_id.get() or ""}
        url = own_base_url(request) + path
        json_body = body if body is not None or method in ("GET", "DELETE") else {}
        kwargs: dict[str, Any] = {"params": params or None, "headers": headers}
        if method not in ("GET", "DELETE"):
            kwargs["json"] = json_body
        async with self._session.request(method, url, **kwargs) as response:
            raw = await response.read()
        try:
            data = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            data = None
        return Answer(response.status, data)
