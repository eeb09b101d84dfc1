"""The API's per-key rate limit as a middleware: past it, 429 with Retry-After (after auth, so per key)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from gleaner.services.gateway.auth import current_principal
from gleaner.services.gateway.rate_limit import KeyBuckets, retry_after_s
from gleaner.shared.errors import Problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def rate_limit_middleware(buckets: KeyBuckets) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        principal = current_principal.get()  # None on public paths: those are not limited
        if principal is not None:
            wait_s = buckets.take(principal.name, time.monotonic())
            if wait_s > 0:
                raise Problem(
                    429,
                    "Too Many Requests",
                    f"this key may send {buckets.rate_per_s:g} requests/s (bursts of {buckets.burst:g})",
                    headers={"Retry-After": str(retry_after_s(wait_s))},
                )
        return await handler(request)

    return middleware
