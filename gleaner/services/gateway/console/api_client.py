"""The console's way to the API: this gateway's own /api/v1 over HTTP, with the signed-in user's key.

Going through the API (rather than its stores) keeps one set of rules: validation, scopes, idempotency and the
problem+json errors are the API's, and the console can only do what its user's key may do.
"""

from __future__ import annotations

import contextlib
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
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
LOOPBACK = "127.0.0.1"


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


def own_base_url(request: web.Request, listen_host: str) -> str:
    """This gateway's API: the port the request arrived on, over loopback when the gateway listens on every
    address (traffic to itself then stays inside the pod, whatever a NetworkPolicy allows it to reach)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        raise Problem(503, "Service Unavailable", "the console cannot tell which port the gateway listens on")
    host = LOOPBACK if listen_host in WILDCARDS else listen_host
    with contextlib.suppress(ValueError):
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            host = f"[{host}]"
    return f"http://{host}:{int(sockname[1])}{API}"


class ApiClient:
    """One keep-alive connection pool for every console request of this gateway."""

    def __init__(self, listen_host: str) -> None:
        self._listen_host = listen_host
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
        headers = {"Authorization": f"Bearer {key}"}
        request_id = gleaner_logging.request_id.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id  # the console's request and the API's log under one id
        url = own_base_url(request, self._listen_host) + path
        kwargs: dict[str, Any] = {"params": params or None, "headers": headers}
        if method not in ("GET", "DELETE"):
            kwargs["json"] = {} if body is None else body
        try:
            async with self._session.request(method, url, **kwargs) as response:
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Problem(503, "Service Unavailable", f"the console could not reach the API: {exc!r}") from None
        try:
            data = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            data = None
        return Answer(response.status, data)
