"""GET /workers and `gleaner workers`: which workers are alive, what they consume, and who stopped or died."""

from __future__ import annotations

from typing import Any

from tests.support.stack import Api, Stack, eventually


async def test_workers_are_listed_alive_then_stopped_or_gone(stack: Stack, api_factory: type[Api]) -> None:
    api = api_factory((await stack.start("gateway")).url)
    polite = await stack.start("worker", name="polite", GLEANER_WORKER_CONCURRENCY="4")
    doomed = await stack.start("worker", name="doomed", GLEANER_WORKER_CONCURRENCY="6")

    status, listing = await api.request("GET", "/workers")
    assert status == 200
    assert (listing["alive"], listing["capacity"], listing["running"]) == (2, 10, 0)
    assert sorted(w["concurrency"] for w in listing["workers"]) == [4, 6]
    assert all(w["queues"] == ["default"] and w["stopped_at"] is None for w in listing["workers"])
    printed = await stack.run_cli("workers", env={"GLEANER_API_URL": f"{api.base_url}"})
    assert printed.splitlines()[0] == "2 alive, running 0 of 10"

    polite.stop()
    doomed.kill()  # no goodbye: it is gone once a lease (3 s here) passes without a heartbeat

    async def both_gone() -> dict[str, Any] | None:
        _, body = await api.request("GET", "/workers")
        return body if body["alive"] == 0 else None

    gone = await eventually(both_gone, timeout_s=10, interval_s=0.25, what="both workers not alive")
    by_concurrency = {w["concurrency"]: w for w in gone["workers"]}
    assert by_concurrency[4]["stopped_at"] is not None, "a graceful stop is recorded"
    assert by_concurrency[6]["stopped_at"] is None and by_concurrency[6]["alive"] is False
    assert gone["capacity"] == 0
