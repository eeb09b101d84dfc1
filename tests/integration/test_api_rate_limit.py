"""GLEANER_API_RATE_PER_S: each key gets its burst, then 429 with Retry-After; other keys are unaffected."""

from __future__ import annotations

import asyncio

from tests.support.contract import checked_session
from tests.support.stack import Api, Stack


async def test_a_key_past_its_rate_gets_429_with_retry_after_and_another_key_does_not(
    stack: Stack, api_factory: type[Api]
) -> None:
    gateway = await stack.start("gateway", GLEANER_API_RATE_PER_S="2", GLEANER_API_BURST="3")
    created = await stack.run_cli("apikey", "create", "--name", "reader", "--scopes", "jobs:read")
    admin, reader = api_factory(gateway.url), api_factory(gateway.url, token=created.strip().splitlines()[-1])

    statuses = [(await admin.request("GET", "/jobs"))[0] for _ in range(3)]
    async with admin.session.get(f"{admin.base_url}/jobs") as refused:
        body = await refused.json(content_type=None)
        retry_after = refused.headers.get("Retry-After")
        content_type = refused.headers.get("Content-Type", "")
    other = (await reader.request("GET", "/jobs"))[0]
    async with checked_session() as anonymous, anonymous.get(f"{admin.base_url}/openapi.json") as public:
        public_status = public.status
    await asyncio.sleep(0.6)  # one token back at 2/s
    later = (await admin.request("GET", "/jobs"))[0]

    assert statuses == [200, 200, 200]
    assert refused.status == 429 and retry_after == "1" and content_type.startswith("application/problem+json")
    assert body["title"] == "Too Many Requests" and "2 requests/s" in body["detail"]
    assert (other, public_status, later) == (200, 200, 200)
