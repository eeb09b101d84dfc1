"""A program using every method of `gleaner.Client` and `gleaner.AsyncClient`, as a user would write it.

`make typecheck` checks it with mypy --strict and `disallow_any_expr` (pyproject.toml), so any public
signature that returned Any would fail the build; tests/e2e/test_python_client.py runs it on a live stack.
"""

from __future__ import annotations

from gleaner import AsyncClient, Client, Conflict, Event, Job, JsonObject, NotFound, Submission

Summary = dict[str, object]


def batch(kinds: int) -> list[Submission]:
    return [{"kind": "noop", "payload": {"i": i, "tags": ["a", "b"]}, "priority": i % 10} for i in range(kinds)]


def use_jobs(client: Client, summary: Summary) -> Job:
    job = client.jobs.submit("noop", {"n": 1}, queue="default", priority=5, max_attempts=2)
    done = client.jobs.wait(job.id, timeout_s=30)
    payload: JsonObject = done.payload
    summary["result"] = done.result
    summary["payload"] = payload
    summary["batch"] = len(client.jobs.submit_many(batch(3)))
    summary["listed"] = [j.id for j in client.jobs.list(kind="noop", payload={"i": 1}, page_size=1)]
    summary["page"] = len(client.jobs.page(page_size=2, kind="noop").items)
    summary["attempts"] = [a.outcome for a in client.jobs.attempts(job.id)]
    summary["results"] = [r.url for r in client.jobs.results(job.id)]
    later = client.jobs.submit("noop", delay_s=3600)
    summary["cancelled"] = client.jobs.cancel(later.id).state
    summary["retried"] = client.jobs.retry(later.id).state
    return done


def use_dead_letters(client: Client, summary: Summary) -> None:
    failing = client.jobs.submit("fail", {"mode": "permanent"})
    client.jobs.wait(failing.id, timeout_s=30)
    letter = f"job-{failing.id}"
    summary["letters"] = [d.id for d in client.dead_letters.list(type="job", kind="fail")]
    client.dead_letters.resolve(letter, note="seen")
    summary["resolved"] = [d.resolution for d in client.dead_letters.list(resolved=True)]
    summary["requeued"] = client.dead_letters.requeue(letter).state
    client.jobs.wait(failing.id, timeout_s=30)
    summary["bulk"] = client.dead_letters.requeue_many(kind="fail", limit=10)
    client.jobs.wait(failing.id, timeout_s=30)
    client.dead_letters.delete(letter)
    try:
        client.jobs.get(failing.id)
    except NotFound as error:
        summary["deleted"] = error.status


def use_schedules(client: Client, summary: Summary) -> None:
    created = client.schedules.create(name="hourly", interval_s=3600, job={"kind": "noop", "payload": {"s": 1}})
    try:
        client.schedules.create(name="hourly", interval_s=60, job={"kind": "noop"})
    except Conflict as error:
        summary["taken"] = error.message_for("name") is not None
    summary["updated"] = client.schedules.update(created.id, cron="0 2 * * *", timezone="Europe/Berlin").type
    replaced = client.schedules.replace(created.id, name="hourly", interval_s=1800, job={"kind": "noop"})
    summary["replaced"] = replaced.interval_s
    summary["preview"] = len(client.schedules.preview(created.id, count=3).fire_times)
    summary["paused"] = client.schedules.pause(created.id).paused
    summary["resumed"] = client.schedules.resume(created.id).paused
    summary["triggered"] = client.schedules.trigger(created.id).schedule_id == created.id
    summary["schedules"] = sorted(s.name for s in client.schedules.list(page_size=2))
    summary["got"] = client.schedules.get(created.id).name
    client.schedules.delete(created.id)
    summary["scheduler"] = [
        client.scheduler.pause().paused,
        client.scheduler.resume().paused,
        client.scheduler.run().fired,
        client.scheduler.status().schedules,
    ]


def use_the_rest(client: Client, summary: Summary) -> None:
    site = client.sites.put("example.org", requests_per_hour=60, burst=2, respectful_hours=None)
    summary["site"] = (site.burst, client.sites.get("example.org").state.running_jobs)
    summary["sites"] = [s.name for s in client.sites.list()]
    summary["queue_paused"] = client.queues.pause("default", reason="maintenance").pause_reason
    summary["queue_resumed"] = client.queues.resume("default").paused
    summary["queues"] = [(q.name, q.scheduled) for q in client.queues.list()]
    summary["workers"] = client.workers().alive
    summary["kinds"] = [(k.name, k.workers_alive) for k in client.kinds() if k.name == "noop"]
    summary["kind"] = client.kind("maintenance.prune").privileged
    summary["stats"] = sorted(g.kind for g in client.stats(window_s=3600).groups)
    summary["health"] = client.health().ok
    summary["raw"] = client.request("GET", "/jobs", params={"page_size": 1, "kind": "noop"}) is not None


def use_events(client: Client, summary: Summary) -> None:
    hook = client.create_webhook(
        "https://example.com/hook", "a-secret-of-the-receiver", filter={"kind": ["nothing.*"]}, description="d"
    )
    summary["webhooks"] = [(w.url, w.filter) for w in client.webhooks() if w.id == hook.id]
    client.delete_webhook(hook.id)
    job = client.jobs.submit("noop", {"e": 1}, delay_s=1)
    seen: list[Event] = list(client.events(job_id=[job.id], type=["job.started", "job.succeeded"], duration_s=3))
    summary["events"] = [(e.type, e.job_id, e.state) for e in seen]
    summary["event_ids"] = all(e.id is not None and e.at is not None for e in seen)


def use_client(client: Client) -> Summary:
    summary: Summary = {}
    use_jobs(client, summary)
    use_dead_letters(client, summary)
    use_schedules(client, summary)
    use_the_rest(client, summary)
    use_events(client, summary)
    return summary


async def use_async_client(client: AsyncClient) -> Summary:
    """The same calls through AsyncClient (fewer of them: the surface is the same)."""
    summary: Summary = {}
    job = await client.jobs.submit("noop", {"n": 1}, priority=5)
    done = await client.jobs.wait(job.id, timeout_s=30)
    summary["result"] = done.result
    summary["batch"] = len(await client.jobs.submit_many(batch(3)))
    summary["listed"] = [j.id async for j in client.jobs.list(kind="noop", payload={"i": 1}, page_size=1)]
    summary["attempts"] = [a.outcome for a in await client.jobs.attempts(job.id)]
    summary["results"] = [r.url async for r in client.jobs.results(job.id)]
    later = await client.jobs.submit("noop", delay_s=3600)
    summary["cancelled"] = (await client.jobs.cancel(later.id)).state
    summary["letters"] = len(await client.dead_letters.list())
    summary["bulk"] = await client.dead_letters.requeue_many(kind="fail")
    created = await client.schedules.create(name="hourly", interval_s=3600, job={"kind": "noop"})
    summary["schedules"] = [s.name async for s in client.schedules.list()]
    summary["preview"] = len((await client.schedules.preview(created.id, count=3)).fire_times)
    await client.schedules.delete(created.id)
    summary["scheduler"] = (await client.scheduler.status()).paused
    summary["site"] = (await client.sites.put("example.org", burst=3)).burst
    summary["queues"] = [q.name for q in await client.queues.list()]
    summary["workers"] = (await client.workers()).alive
    summary["kinds"] = [k.name for k in await client.kinds() if k.schema is not None]
    summary["kind"] = (await client.kind("sleep")).description
    summary["stats"] = sorted(g.kind for g in (await client.stats()).groups)
    summary["health"] = (await client.health()).ok
    hook = await client.create_webhook("https://example.com/hook", "a-secret-of-the-receiver")
    summary["webhooks"] = [w.id for w in await client.webhooks()] == [hook.id]
    await client.delete_webhook(hook.id)
    later = await client.jobs.submit("noop", delay_s=1)
    summary["events"] = [e.type async for e in client.events(job_id=[later.id], type=["job.s*"], duration_s=3)]
    return summary
