"""Load for the fault scenarios: batch and paced submissions that remember every answer, schedules, leaders."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.contract import checked_session
from tests.support.fault_rig import Scene, metric
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Api, Service

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# a fault may cost a healthy job an attempt or two (a lease lost with the worker); never its success
MAX_ATTEMPTS = 10


def record_jobs(count: int, kind: str = "record.noop", **fields: Any) -> list[dict[str, Any]]:
    """`count` submissions of a recording kind, each with its own payload."""
    payload = fields.pop("payload", {})
    return [
        {"kind": kind, "payload": {**payload, "n": n}, "max_attempts": MAX_ATTEMPTS, **fields} for n in range(count)
    ]


async def submit_batches(api: Api, jobs: Sequence[dict[str, Any]], size: int = 1000, concurrency: int = 2) -> list[int]:
    """Submit through POST /jobs/batch; the ids the gateway acknowledged (a refused batch fails the scenario)."""
    batches = [list(jobs[start : start + size]) for start in range(0, len(jobs), size)]
    ids: list[int] = []

    async def sender() -> None:
        while batches:
            batch = batches.pop()
            status, body = await api.request("POST", "/jobs/batch", json={"jobs": batch})
            assert status == 202, (status, body)
            ids.extend(job["id"] for job in body["jobs"])

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return ids


@dataclass(frozen=True, slots=True)
class Answer:
    """One POST /jobs: when it was sent and answered (monotonic), its status (0: no answer) and job id."""

    sent: float
    answered: float
    status: int
    job_id: int | None


@dataclass(slots=True)
class Submitter:
    """Submits one recording job every 1/rate seconds without waiting for answers, and keeps every answer."""

    url: str
    rate_per_s: float
    job: dict[str, Any]
    timeout_s: float = 15.0
    answers: list[Answer] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _requests: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self) -> None:
        self._task = asyncio.create_task(self._pace())

    def stop(self) -> None:
        """Send no more (requests under way go on)."""
        if self._task is not None:
            self._task.cancel()

    async def settle(self) -> None:
        """Wait for the answers still due."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._requests:
            await asyncio.wait(self._requests)

    @property
    def acknowledged(self) -> list[int]:
        return [a.job_id for a in self.answers if a.job_id is not None]

    async def _pace(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with checked_session(headers=HEADERS, timeout=timeout) as session:
            n = 0
            while True:
                task = asyncio.create_task(self._one(session, n))
                self._requests.add(task)
                task.add_done_callback(self._requests.discard)
                n += 1
                await asyncio.sleep(1 / self.rate_per_s)  # pacing the load, not waiting for a result

    async def _one(self, session: aiohttp.ClientSession, n: int) -> None:
        sent = time.monotonic()
        body = {**self.job, "payload": {**self.job.get("payload", {}), "paced": n}}
        status, job_id = 0, None
        try:
            async with session.post(f"{self.url}/api/v1/jobs", json=body) as response:
                status = response.status
                if 200 <= status < 300:
                    job_id = (await response.json())["id"]
        except (aiohttp.ClientError, TimeoutError):
            pass
        self.answers.append(Answer(sent, time.monotonic(), status, job_id))


def every(name: str, interval_s: float, kind: str = "record.noop") -> dict[str, Any]:
    """An interval schedule without jitter, so its slots are exactly `interval_s` apart."""
    job = {"kind": kind, "payload": {"schedule": name}, "max_attempts": MAX_ATTEMPTS}
    return {"name": name, "interval_s": interval_s, "jitter": 0, "misfire": "fire_once", "job": job}


async def create_schedules(api: Api, count: int, interval_s: float) -> list[int]:
    ids = []
    for n in range(count):
        status, body = await api.request("POST", "/schedules", json=every(f"tick-{n}", interval_s))
        assert status == 201, (status, body)
        ids.append(body["id"])
    return ids


async def is_leader(service: Service) -> bool:
    try:
        return await metric(service, "gleaner_scheduler_leader") == 1
    except aiohttp.ClientError:
        return False


async def leaders(services: Sequence[Service]) -> list[Service]:
    alive = [s for s in services if s.process is not None and s.process.poll() is None]
    return [s for s in alive if await is_leader(s)]


async def ran_at_least(scene: Scene, count: int) -> bool:
    """The recording table shows at least `count` executions."""
    return (await scene.executions()).runs >= count


def lease_s(scene: Scene) -> float:
    return float(scene.env["GLEANER_LEASE_S"])
