"""The fault scenarios of issue 10, each against a private broker and cluster; `make test` and `make chaos` run them.

Every scenario starts real services on a `FaultRig` scene, injects its fault on the private node or cluster
only, and returns an `Outcome`: the figures of the chaos table and every promise that did not hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from tests.faults import poison
from tests.faults.outcome import FINAL, Outcome, all_final, since, until
from tests.faults.workload import Submitter, create_schedules, leaders, record_jobs, submit_batches
from tests.support.fault_rig import FaultRig, Scene, get_status, metric
from tests.support.stack import Api, Service

RECONNECTS = "gleaner_amqp_reconnects_total"
DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
OTHER_BACKENDS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
NOW = "SELECT now()"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each scenario is; `make test` uses the defaults, `make chaos` ten times the counts."""

    plain_jobs: int = 20_000
    plain_workers: int = 2
    drop_in_flight: int = 60
    broker_outage_s: float = 20.0
    outage_schedules: int = 1
    outage_submissions: int = 40
    postgres_outage_s: float = 10.0
    postgres_jobs: int = 200
    postgres_rate_per_s: float = 10.0
    kill_jobs: int = 100
    leader_kills: int = 3
    leader_schedules: int = 10
    poison_copies: int = 1

    def scaled(self, factor: int) -> Sizes:
        """Counts times `factor`; fault durations and the number of workers stay."""
        counts = ("plain_jobs", "drop_in_flight", "outage_schedules", "outage_submissions", "postgres_jobs")
        counts += ("postgres_rate_per_s", "kill_jobs", "leader_kills", "leader_schedules", "poison_copies")
        return dataclasses.replace(self, **{name: getattr(self, name) * factor for name in counts})

    @classmethod
    def smoke(cls) -> Sizes:
        """Tiny and short: proves the scenarios run, measures nothing."""
        return cls(
            plain_jobs=200,
            drop_in_flight=5,
            broker_outage_s=4.0,
            outage_submissions=4,
            postgres_outage_s=2.0,
            postgres_jobs=20,
            postgres_rate_per_s=2.0,
            kill_jobs=10,
            leader_kills=1,
            leader_schedules=2,
        )


Scenario = Callable[[FaultRig, Sizes], Awaitable[Outcome]]


async def ran_at_least(scene: Scene, count: int) -> bool:
    return (await scene.executions()).runs >= count


def lease_s(scene: Scene) -> float:
    return float(scene.env["GLEANER_LEASE_S"])


# -- a plain run --


async def plain_run(rig: FaultRig, sizes: Sizes) -> Outcome:
    """Many noop jobs, two workers, no fault: every job runs exactly once and PostgreSQL sees no deadlock."""
    out = Outcome("plain run")
    async with rig.scene("plain") as scene:
        workers = [
            scene.start("worker", f"worker-{n}", GLEANER_WORKER_CONCURRENCY="64") for n in range(sizes.plain_workers)
        ]
        gateway, *_ = await asyncio.gather(scene.start("gateway"), scene.start("scheduler"), *workers)
        before = await scene.db.fetchval(DEADLOCKS)
        started = time.monotonic()
        jobs = record_jobs(sizes.plain_jobs)
        for n, job in enumerate(jobs):
            job["priority"] = n % 10  # deliveries out of id order, as real traffic has them
        ids = await submit_batches(scene.api(gateway), jobs)
        drained = await until(lambda: all_final(scene.db, ids), 60 + sizes.plain_jobs / 100, interval_s=0.5)
        out.check(drained is not None, "the jobs did not all finish")
        if drained is not None:
            out.figures["jobs_per_s"] = round(len(ids) / (drained - started))
        await _stop_and_count_deadlocks(scene, out, before)
        await out.tally(scene.db, ids)
        out.check(out.re_executed == 0, f"{out.re_executed} re-executions without any fault")
    return out


async def _stop_and_count_deadlocks(scene: Scene, out: Outcome, before: int) -> None:
    """Stop the services (their backends flush statistics as they exit), then read both deadlock records."""
    scene.stack.stop_all()
    await until(lambda: _no_other_backends(scene), 10)
    counted = await scene.db.fetchval(DEADLOCKS) - before
    logged = scene.rig.postgres.log_count(scene.database, "deadlock detected")
    out.figures["deadlocks"] = max(counted, logged)
    out.check(counted == logged == 0, f"PostgreSQL detected deadlocks: {counted} counted, {logged} logged")


async def _no_other_backends(scene: Scene) -> bool:
    return bool(await scene.db.fetchval(OTHER_BACKENDS) == 0)


# -- AMQP connection drop --

DROP_SLEEP_S = 5.0
RECONNECT_PROMISE_S = 5.0


async def connection_drop(rig: FaultRig, sizes: Sizes) -> Outcome:
    """Connections closed by the broker while jobs run: none runs again, all finish within 5 s of the reconnect."""
    out = Outcome("AMQP connection drop")
    count = sizes.drop_in_flight
    async with rig.scene("drop") as scene:
        gateway, _, worker = await asyncio.gather(
            scene.start("gateway"),
            scene.start("scheduler"),
            scene.start("worker", GLEANER_WORKER_CONCURRENCY=str(count + 8)),
        )
        api = scene.api(gateway)
        ids = await submit_batches(api, record_jobs(count, "record.sleep", payload={"seconds": DROP_SLEEP_S}))
        out.check(await until(lambda: ran_at_least(scene, count), 30) is not None, f"{count} jobs never ran at once")
        out.figures["in_flight"] = (await scene.executions()).runs
        reconnects = await metric(worker, RECONNECTS)
        await rig.rabbit.drop_connections()
        reconnected = await until(lambda: _reconnected(worker, reconnects), 60)
        if out.check(reconnected is not None, "the worker never reconnected"):
            assert reconnected is not None
            out.recovery_s = since(reconnected, await until(lambda: all_final(scene.db, ids), 30))
            late = out.recovery_s is None or out.recovery_s > RECONNECT_PROMISE_S
            out.check(not late, f"in-flight jobs finished {out.recovery_s} s after the reconnect (promise: 5 s)")
        after = await api.submit(**record_jobs(1)[0])
        ran = await until(lambda: all_final(scene.db, [after["id"]]), 15)
        out.check(ran is not None, "a job submitted after the reconnect never finished")
        await out.tally(scene.db, [*ids, after["id"]])
        out.check(out.re_executed == 0, f"{out.re_executed} jobs ran again after the connection drop")
    return out


async def _reconnected(worker: Service, before: float) -> bool:
    return await metric(worker, RECONNECTS) > before


# -- RabbitMQ stopped --

DEGRADED_PROMISE_S = 2.0
START_PROMISE_S = 5.0
HEALTHY_AGAIN_S = 15.0


async def broker_outage(rig: FaultRig, sizes: Sizes) -> Outcome:
    """RabbitMQ stopped while the gateway takes jobs and a 1 s schedule fires: the outage shows, nothing waits."""
    out = Outcome("RabbitMQ stopped")
    async with rig.scene("outage") as scene:
        services = list(await asyncio.gather(*(scene.start(command) for command in ("gateway", "scheduler", "worker"))))
        api = scene.api(services[0])
        schedules = await create_schedules(api, sizes.outage_schedules, interval_s=1)
        fired = await until(lambda: _fired_each(scene, schedules, 2), 20)
        out.check(fired is not None, "the schedules did not fire before the outage")
        rate = sizes.outage_submissions / sizes.broker_outage_s
        submitter = Submitter(services[0].url, rate, record_jobs(1)[0])
        window = await _outage(scene, out, submitter, services, sizes.broker_outage_s)
        await submitter.settle()
        refused = [a.status for a in submitter.answers if a.status != 202]
        out.check(not refused, f"submissions during the outage answered {refused} instead of 202")
        await _started_after_return(scene, out, submitter.acknowledged, window)
        healthy = since(window.returned, await until(lambda: _all_status(services, "/health", 200), 30))
        out.figures["healthy_again_s"] = healthy
        out.check(healthy is not None and healthy <= HEALTHY_AGAIN_S, f"/health not 200 again {healthy} s after")
        await _settle_schedules(scene, out, api, schedules, interval_s=1)
    return out


async def _fired_each(scene: Scene, schedules: list[int], count: int) -> bool:
    fired = await scene.db.fetchval(
        "SELECT count(DISTINCT schedule_id) FROM (SELECT schedule_id FROM jobs WHERE schedule_id = ANY($1) "
        "AND state = 'succeeded' GROUP BY schedule_id HAVING count(*) >= $2) AS s",
        schedules,
        count,
    )
    return bool(fired == len(schedules))


@dataclass(frozen=True, slots=True)
class Window:
    """An outage by the database clock (`down`, `up`), and the monotonic time the broker returned."""

    down: datetime
    up: datetime
    returned: float


async def _outage(scene: Scene, out: Outcome, submitter: Submitter, services: list[Service], seconds: float) -> Window:
    """Stop the broker for `seconds` with submissions going on, and check what the services say meanwhile."""
    await scene.rig.rabbit.app_down()
    stopped = time.monotonic()
    down = await scene.db.fetchval(NOW)
    submitter.start()
    await _watch_degraded(out, services, stopped)
    await asyncio.sleep(max(0.0, stopped + seconds - time.monotonic()))  # the outage lasts this long
    submitter.stop()
    await scene.rig.rabbit.app_up()
    returned = time.monotonic()
    return Window(down, await scene.db.fetchval(NOW), returned)


async def _watch_degraded(out: Outcome, services: list[Service], stopped: float) -> None:
    """/health of every service 503 `degraded`, and the worker's /readyz 503, within 2 s of the outage."""
    watches = [_degraded(service.url + "/health") for service in services]
    worker = next(s for s in services if s.command == "worker")
    watches.append(_status(worker.url + "/readyz", 503))
    seen = await asyncio.gather(*(until(watch, 5, interval_s=0.05) for watch in watches))
    names = [f"{s.name} /health" for s in services] + [f"{worker.name} /readyz"]
    for name, when in zip(names, seen, strict=True):
        seconds = since(stopped, when)
        out.figures[f"{name} degraded after s"] = seconds
        out.check(seconds is not None and seconds <= DEGRADED_PROMISE_S, f"{name} not 503 within 2 s: {seconds}")


def _degraded(url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        status, body = await get_status(url)
        return status == 503 and body.get("status") == "degraded"

    return check


def _status(url: str, wanted: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await get_status(url))[0] == wanted

    return check


async def _all_status(services: list[Service], path: str, wanted: int) -> bool:
    return all([(await get_status(s.url + path))[0] == wanted for s in services])


async def _started_after_return(scene: Scene, out: Outcome, submitted: list[int], window: Window) -> None:
    """Every job submitted or fired while the broker was down starts within 5 s of its return."""
    fired = await scene.db.fetch("SELECT id FROM jobs WHERE scheduled_for BETWEEN $1 AND $2", window.down, window.up)
    ids = submitted + [row["id"] for row in fired]
    out.figures["fired_during_outage"] = len(fired)
    started = await until(lambda: _all_started(scene, ids), 30)
    out.check(started is not None, "jobs of the outage never started")
    latest = await scene.db.fetchval("SELECT max(started_at) FROM jobs WHERE id = ANY($1)", ids)
    out.recovery_s = None if latest is None else round(max(0.0, (latest - window.up).total_seconds()), 2)
    late = out.recovery_s is None or out.recovery_s > START_PROMISE_S
    out.check(not late, f"the last job of the outage started {out.recovery_s} s after the broker came back")


async def _all_started(scene: Scene, ids: list[int]) -> bool:
    started = await scene.db.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1) AND started_at IS NOT NULL", ids)
    return bool(started == len(set(ids)))


async def _settle_schedules(scene: Scene, out: Outcome, api: Api, schedules: list[int], interval_s: float) -> None:
    """Pause the scheduler, let every job finish, then check each schedule's slots: none twice, none skipped."""
    status, _ = await api.request("POST", "/scheduler/pause")
    assert status == 200, status
    await until(lambda: _nothing_unfinished(scene), 30)
    await out.tally(scene.db, [row["id"] for row in await scene.db.fetch("SELECT id FROM jobs")])
    skipped = await _skipped_slots(scene, schedules, interval_s)
    out.figures["skipped_slots"] = skipped
    out.check(skipped == 0, f"{skipped} schedule slots have no job")


async def _nothing_unfinished(scene: Scene) -> bool:
    return not await scene.db.fetchval("SELECT count(*) FROM jobs WHERE state <> ALL($1::text[])", list(FINAL))


SLOTS = """
SELECT schedule_id, count(*) AS jobs, count(DISTINCT scheduled_for) AS slots,
       EXTRACT(EPOCH FROM max(scheduled_for) - min(scheduled_for))::float8 AS span_s
FROM jobs WHERE schedule_id = ANY($1) GROUP BY schedule_id
"""


async def _skipped_slots(scene: Scene, schedules: list[int], interval_s: float) -> int:
    """Slots between each schedule's first and last job that have no job (or a second one)."""
    skipped = 0
    for row in await scene.db.fetch(SLOTS, schedules):
        expected = round(row["span_s"] / interval_s) + 1
        skipped += abs(expected - row["slots"]) + (row["jobs"] - row["slots"])
    return skipped


# -- PostgreSQL crashed --

FINAL_AFTER_LEASE_S = 15.0


async def postgres_outage(rig: FaultRig, sizes: Sizes) -> Outcome:
    """An immediate stop of PostgreSQL under load: no 2xx while it is down, every job final within lease + 15 s."""
    out = Outcome("PostgreSQL crashed")
    async with rig.scene("crash") as scene:
        gateway, *_ = await asyncio.gather(scene.start("gateway"), scene.start("scheduler"), scene.start("worker"))
        api = scene.api(gateway)
        jobs = record_jobs(sizes.postgres_jobs, "record.sleep", payload={"seconds": 0.2}, retry_base_s=0.2)
        ids = await submit_batches(api, jobs)
        submitter = Submitter(gateway.url, sizes.postgres_rate_per_s, record_jobs(1)[0])
        submitter.start()
        await until(lambda: ran_at_least(scene, min(20, len(ids))), 20)
        crashed, restarting, back = await _crash(scene, sizes.postgres_outage_s)
        submitter.stop()
        await submitter.settle()
        while_down = [a for a in submitter.answers if a.sent >= crashed and a.answered <= restarting]
        accepted = [a.status for a in while_down if 200 <= a.status < 300]
        out.figures["submissions_while_down"] = len(while_down)
        out.check(not accepted, f"{len(accepted)} of {len(while_down)} submissions got 2xx while PostgreSQL was down")
        acknowledged = ids + submitter.acknowledged
        promise = lease_s(scene) + FINAL_AFTER_LEASE_S
        out.recovery_s = since(back, await until(lambda: all_final(scene.db, acknowledged), promise + 30))
        late = out.recovery_s is None or out.recovery_s > promise
        out.check(not late, f"jobs final {out.recovery_s} s after PostgreSQL came back (promise: {promise} s)")
        await out.tally(scene.db, acknowledged)
    return out


async def _crash(scene: Scene, seconds: float) -> tuple[float, float, float]:
    """Crash the cluster for `seconds`; monotonic (crashed, restart begun, back). The scene's pool is renewed."""
    scene.drop_db()
    await scene.rig.postgres.crash()
    crashed = time.monotonic()
    await asyncio.sleep(seconds)  # the outage lasts this long
    restarting = time.monotonic()
    await scene.rig.postgres.restart_after_crash()
    back = time.monotonic()
    await scene.reopen_db()
    return crashed, restarting, back


# -- a worker killed and restarted under the same id --

RECOVERED_AFTER_LEASE_S = 5.0


async def worker_kill(rig: FaultRig, sizes: Sizes) -> Outcome:
    """kill -9 of a worker, restarted at once under the same GLEANER_WORKER_ID and kept busy: the dead start's
    jobs recover within lease + 5 s (the new start's heartbeat must not keep their leases alive)."""
    out = Outcome("worker kill -9")
    count = sizes.kill_jobs
    worker_env = {"GLEANER_WORKER_ID": "victim", "GLEANER_WORKER_CONCURRENCY": str(2 * count)}
    async with rig.scene("kill") as scene:
        gateway, _, victim = await asyncio.gather(
            scene.start("gateway"), scene.start("scheduler"), scene.start("worker", "victim", **worker_env)
        )
        api = scene.api(gateway)
        ids = await submit_batches(api, record_jobs(count, "record.sleep", payload={"seconds": 2.0}, retry_base_s=0.2))
        await until(lambda: ran_at_least(scene, count // 2), 20)
        in_flight = [row["id"] for row in await scene.db.fetch("SELECT id FROM jobs WHERE state = 'running'")]
        victim.kill()
        killed = time.monotonic()
        await scene.start("worker", name="victim", **worker_env)
        promise = lease_s(scene) + RECOVERED_AFTER_LEASE_S
        busy = record_jobs(max(1, count // 2), "record.sleep", payload={"seconds": promise + 2})
        ids += await submit_batches(api, busy)
        out.figures["in_flight_at_kill"] = len(in_flight)
        out.recovery_s = since(killed, await until(lambda: all_final(scene.db, in_flight), promise + 30))
        late = out.recovery_s is None or out.recovery_s > promise
        out.check(
            not late, f"the killed worker's jobs recovered {out.recovery_s} s after the kill (promise: {promise})"
        )
        await until(lambda: all_final(scene.db, ids), 30)
        await out.tally(scene.db, ids)
    return out


# -- the scheduler leader killed, again and again --

LEADER_INTERVAL_S = 2.0
TAKEOVER_TIMEOUT_S = 10.0


async def leader_kills(rig: FaultRig, sizes: Sizes) -> Outcome:
    """kill -9 of the scheduler leader, repeatedly, three schedulers running: no slot fired twice or skipped."""
    out = Outcome("scheduler leader kill -9")
    async with rig.scene("leader") as scene:
        gateway, _, *schedulers = await asyncio.gather(
            scene.start("gateway"),
            scene.start("worker"),
            *(scene.start("scheduler", f"scheduler-{n}") for n in range(3)),
        )
        api = scene.api(gateway)
        schedules = await create_schedules(api, sizes.leader_schedules, interval_s=LEADER_INTERVAL_S)
        takeovers = []
        for kill in range(sizes.leader_kills):
            await asyncio.sleep(LEADER_INTERVAL_S * 1.5)  # the leader fires a slot or two first
            takeover = await _kill_leader(scene, schedulers, kill)
            out.check(takeover is not None, f"no new leader within {TAKEOVER_TIMEOUT_S} s of kill {kill + 1}")
            takeovers.append(takeover)
        await asyncio.sleep(LEADER_INTERVAL_S * 1.5)
        measured = [t for t in takeovers if t is not None]
        out.recovery_s = max(measured, default=None)
        out.figures["takeovers_s"] = measured
        await _settle_schedules(scene, out, api, schedules, interval_s=LEADER_INTERVAL_S)
        out.check(out.re_executed == 0, f"{out.re_executed} fired jobs ran twice")
    return out


async def _kill_leader(scene: Scene, schedulers: list[Service], kill: int) -> float | None:
    """Kill the one leader, time the takeover, and start a replacement so three run again."""
    await until(lambda: _one_leader(schedulers), TAKEOVER_TIMEOUT_S, interval_s=0.05)
    current = await leaders(schedulers)
    if len(current) != 1:
        return None
    leader = current[0]
    leader.kill()
    killed = time.monotonic()
    schedulers.remove(leader)
    took = since(killed, await until(lambda: _one_leader(schedulers), TAKEOVER_TIMEOUT_S, interval_s=0.05))
    schedulers.append(await scene.start("scheduler", name=f"scheduler-r{kill}"))
    return took


async def _one_leader(schedulers: list[Service]) -> bool:
    return len(await leaders(schedulers)) == 1


# -- poison messages --

REDELIVERY_WATCH_S = 3.0


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
        requeued = worker.log().count("requeueing the message")
        out.figures["flows_requeued"] = requeued
        out.check(requeued == 0, f"poison was handed back to the queue {requeued} times")
        await out.tally(scene.db, [normal["id"]])
    return out


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


SCENARIOS: dict[str, Scenario] = {
    "plain": plain_run,
    "connection-drop": connection_drop,
    "broker-outage": broker_outage,
    "postgres-crash": postgres_outage,
    "worker-kill": worker_kill,
    "leader-kill": leader_kills,
    "poison": poison_messages,
}
