"""The gateway's HTTP API as the operator commands call it: JSON in and out, problems as GleanerError."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp

from gleaner.shared.errors import GleanerError

TIMEOUT_S = 75.0  # above the API's longest hold (?wait=60)
IDEMPOTENCY_HEADER = "Idempotency-Key"
# A submission whose answer was lost (the connection dropped) or that met a gateway unable to answer now (503,
# or a proxy's 502/504) may have been committed: it is sent again with the same Idempotency-Key, which makes the
# gateway answer with the job it created instead of creating a second one. The pauses between tries, ~15 s in all.
RESEND_STATUSES = frozenset({502, 503, 504})
RESEND_PAUSES_S = (0.5, 1.0, 2.0, 4.0, 8.0)


class ApiError(GleanerError):
    """The gateway answered with an error, or could not be reached."""


class Unreachable(ApiError):
    """No answer from the gateway (refused, dropped or timed out): the request may or may not have happened."""


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

    async def submit(self, path: str, body: Any) -> Any:
        """POST a submission under a fresh Idempotency-Key, sent again with the same key after a lost answer or a
        502/503/504 (see RESEND_STATUSES), so that retrying never creates a second job."""
        url, headers = self.base_url + path, {IDEMPOTENCY_HEADER: f"gleaner-cli-{uuid.uuid4()}"}
        for pause_s in RESEND_PAUSES_S:
            try:
                status, data = await self._send("POST", url, json=body, headers=headers)
            except Unreachable:
                pass
            else:
                if status not in RESEND_STATUSES:
                    return _checked(status, data)
            await asyncio.sleep(pause_s)
        return _checked(*await self._send("POST", url, json=body, headers=headers))

    async def health(self) -> tuple[bool, Any]:
        """(healthy, body) of the gateway's /health, beside the API root; a 503 still has its checks."""
        status, body = await self._send("GET", self.base_url.removesuffix("/api/v1") + "/health")
        if status not in (200, 503):
            raise ApiError(problem_text(status, body))
        return status == 200, body

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """The response's JSON; an error status raises ApiError with the problem's text."""
        return _checked(*await self._send(method, self.base_url + path, params=params, json=json))

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self._session.request(method, url, params=query, json=json, headers=headers) as response:
                return response.status, await _json_or_none(response)
        except aiohttp.ClientError as exc:
            raise Unreachable(f"cannot reach the gateway at {self.base_url} (GLEANER_API_URL): {exc}") from None
        except TimeoutError:
            raise Unreachable(f"the gateway at {self.base_url} did not answer within {TIMEOUT_S:g}s") from None


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    """The answer's JSON; None for an empty body or one that is not JSON (a proxy's error page)."""
    if response.content_length == 0:
        return None
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


def _checked(status: int, body: Any) -> Any:
    """The body of a successful answer; an error status raises ApiError with the problem's text."""
    if status >= 400:
        raise ApiError(problem_text(status, body))
    return body


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
