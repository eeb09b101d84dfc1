"""Webhooks end to end: a local receiver checks each delivery's signature with the README's own code; answering
500 makes the job retry."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.support.stack import Api, Stack, eventually

SECRET = "s3cret-for-the-receiver-only"
README = Path(__file__).resolve().parents[2] / "README.md"
PRIVATE = {"GLEANER_FETCH_ALLOW_PRIVATE": "true", "GLEANER_DEFAULT_RETRY_BASE_S": "0.2"}


def readme_verifier() -> Callable[[str, dict[str, str], bytes], bool]:
    """`verified` as the README's Webhooks section defines it: its one ```python block, run as written."""
    section = README.read_text().split("\n### Webhooks\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md (Webhooks)", "exec"), namespace)  # the README's own code, as written
    verified: Callable[[str, dict[str, str], bytes], bool] = namespace["verified"]
    return verified


@dataclass
class Receiver:
    """Verifies with the README's receiver code; answers 500 to the first `failures` deliveries."""

    failures: int
    url: str = ""
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    verified: Callable[[str, dict[str, str], bytes], bool] = field(default_factory=readme_verifier)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers.items())
        ok = self.verified(SECRET, headers, body) and not self.verified("another-secret-entirely", headers, body)
        self.deliveries.append({"verified": ok, "event": orjson.loads(body), **headers})
        if len(self.deliveries) <= self.failures:
            return web.Response(status=500)
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    received = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", received.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    received.url = f"http://127.0.0.1:{port}/hook"
    yield received
    await runner.cleanup()


async def test_a_failed_job_is_delivered_signed_and_retried_after_the_receiver_answers_500_twice(
    stack: Stack, api_factory: type[Api], receiver: Receiver
) -> None:
    gateway = await stack.start("gateway", **PRIVATE)
    await stack.start("worker", **PRIVATE)
    api = api_factory(gateway.url)
    status, hook = await api.request(
        "POST",
        "/webhooks",
        json={"url": receiver.url, "secret": SECRET, "filter": {"type": ["job.failed"], "kind": ["fail", "boards.*"]}},
    )
    assert status == 201, hook
    status, listed = await api.request("GET", "/webhooks")
    assert status == 200 and SECRET not in orjson.dumps(listed).decode()

    await api.submit(kind="noop", payload={})  # not a failure: never delivered
    job = await api.submit(kind="fail", payload={"mode": "permanent"}, max_attempts=1)
    await eventually(lambda: _delivered(receiver, 3), timeout_s=30, what="three delivery attempts")
    assert all(d["verified"] for d in receiver.deliveries)
    assert {(d["event"]["type"], d["event"]["job_id"]) for d in receiver.deliveries} == {("job.failed", job["id"])}
    delivery_job = int(receiver.deliveries[-1]["Gleaner-Delivery"])
    delivered = await api.job(delivery_job, wait=10)
    assert (delivered["kind"], delivered["state"], delivered["attempt"]) == ("webhook.deliver", "succeeded", 3)
    status, attempts = await api.request("GET", f"/jobs/{delivery_job}/attempts")
    assert [a["error_class"] for a in attempts["attempts"]] == ["http_500", "http_500", None]

    status, _ = await api.request("DELETE", f"/webhooks/{hook['id']}")
    assert status == 204
    status, listed = await api.request("GET", "/webhooks")
    assert listed == {"webhooks": []}


async def _delivered(receiver: Receiver, count: int) -> bool:
    return len(receiver.deliveries) >= count


async def test_webhooks_are_for_admins_and_refuse_a_bad_filter_by_name(stack: Stack, api_factory: type[Api]) -> None:
    gateway = await stack.start("gateway")
    api = api_factory(gateway.url)
    body = {"url": "https://example.com/hook", "secret": "short", "filter": {"type": ["job.exploded"], "color": []}}
    status, problem = await api.request("POST", "/webhooks", json=body)
    assert status == 422
    assert {e["field"] for e in problem["errors"]} == {"secret", "filter.type", "filter.color"}
    created = await stack.run_cli("apikey", "create", "--name", "writer", "--scopes", "jobs:read,jobs:write")
    writer = api_factory(gateway.url, token=created.strip().splitlines()[-1])
    status, _ = await writer.request("GET", "/webhooks")
    assert status == 403
