"""The gateway's HTTP API as the operator commands call it: JSON in and out, problems as GleanerError."""

from __future__ import annotations

from typing import Any

import aiohttp

from shared.errors import GleanerError

TIMEOUT_S = 75.0  # above the API's longest hold (?wait=60)


class ApiError(GleanerError):
    """The gateway answered with an error, or could not be reached."""


class GatewayClient:
    """`async with GatewayClient(url, token) as api: await api.get("/jobs")`."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._session.close()

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, json=body)

    async def health(self) -> tuple[bool, Any]:
        """(healthy, body) of the gateway's /health, beside the API root; a 503 still has its checks."""
        status, body = await self._send("GET", self.base_url.removesuffix("/api/v1") + "/health")
        if status not in (200, 503):
            raise ApiError(problem_text(status, body))
        return status == 200, body

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """The response's JSON; an error status raises ApiError with the problem's text."""
        status, body = await self._send(method, self.base_url + path, params=params, json=json)
        if status >= 400:
            raise ApiError(problem_text(status, body))
        return body

    async def _send(
        self, method: str, url: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> tuple[int, Any]:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self._session.request(method, url, params=query, json=json) as response:
                body = await response.json(content_type=None) if response.content_length != 0 else None
                return response.status, body
        except aiohttp.ClientError as exc:
            raise ApiError(f"cannot reach the gateway at {self.base_url} (GLEANER_API_URL): {exc}") from None
        except TimeoutError:
            raise ApiError(f"the gateway at {self.base_url} did not answer within {TIMEOUT_S:g}s") from None


def problem_text(status: int, body: Any) -> str:
    """One line for an RFC 9457 problem: status, title, detail and each field error. Pure."""
    if not isinstance(body, dict):
        return f"HTTP {status}"
    text = f"HTTP {status} {body.get('title', '')}".rstrip()
    if body.get("detail"):
        text += f": {body['detail']}"
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        text += " (" + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)) + ")"
    return text
