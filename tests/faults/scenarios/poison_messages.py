"""Poison published straight to a work queue: one dead letter each, the worker unaffected, nothing redelivered."""

from __future__ import annotations

import asyncio
import time

import orjson

from tests.faults import poison
from tests.faults.outcome import Outcome, all_final, since, until
from tests.faults.sizes import Sizes
from tests.faults.workload import record_jobs
from tests.support.fault_rig import FaultRig
from tests.support.stack import Api

REDELIVERY_WATCH_S = 3.0
CONSUMER = "gleaner.services.worker.consumer"


async def poison_messages(rig: FaultRig, sizes: Sizes) -> Outcome:
    """Poison published to the work queue: each a dead letter once, the worker unaffected, no redelivery loop."""
    out = Outcome("poison messages")
    bad = [p for copy in range(sizes.poison_copies) for p in poison.poisons(copy)]
    async with rig.scene("poison") as scene:
        gateway, worker = await asyncio.gather(scene.start("gateway"), scene.start("worker"))
        api = scene.api(gateway)
        queue = f"{scene.env['GLEANER_NAMESPACE']}.q.default"
        published = time.monotonic()
        await poison.publish(rig.rabbit.amqp_url, queue, bad)
        lettered = await until(lambda: _all_lettered(api, bad), 20, interval_s=0.2)
        out.recovery_s = since(published, lettered)
        normal = await api.submit(**record_jobs(1)[0])
        ran = await until(lambda: all_final(scene.db, [normal["id"]]), 15)
        out.check(ran is not None, "a normal job did not run after the poison")
        await asyncio.sleep(REDELIVERY_WATCH_S)  # a redelivery loop shows only over time (requeues pause 1 s)
        await _check_letters(out, api, bad)
        depth = (await rig.rabbit.queue_depths()).get(queue)
        out.check(depth is not None and depth.ready == depth.unacked == 0, f"{queue} still holds messages: {depth}")
        out.check(worker.process is not None and worker.process.poll() is None, "the worker died")
        troubles = _consumer_troubles(worker.log())
        out.figures["consumer_warnings"] = len(troubles)
        out.check(not troubles, f"the consumer struggled with the poison ({len(troubles)} times): {troubles[:2]}")
        await out.tally(scene.db, [normal["id"]])
    return out


def _consumer_troubles(log: str) -> list[str]:
    """The consumer's warnings and errors: a flow that failed, was handed back or counted towards giving up."""
    troubles = []
    for line in log.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if entry.get("logger") == CONSUMER and entry.get("level") in ("warning", "error"):
            troubles.append(str(entry.get("msg")))
    return troubles


async def _letters(api: Api) -> list[dict[str, object]]:
    status, body = await api.request("GET", "/dead-letters", params={"type": "message", "limit": "1000"})
    assert status == 200, (status, body)
    return list(body["dead_letters"])


async def _all_lettered(api: Api, bad: list[poison.Poison]) -> bool:
    found = poison.letters_by_marker(await _letters(api), [p.marker for p in bad])
    return all(found.values())


async def _check_letters(out: Outcome, api: Api, bad: list[poison.Poison]) -> None:
    found = poison.letters_by_marker(await _letters(api), [p.marker for p in bad])
    for p in bad:
        letters = found[p.marker]
        out.check(len(letters) == 1, f"{p.name}: {len(letters)} dead letters instead of one")
        if p.name == "no_such_job" and letters:
            out.check(letters[0]["reason"] == "no_such_job", f"no_such_job recorded as {letters[0]['reason']!r}")
    out.figures["dead_letters"] = sum(len(v) for v in found.values())
