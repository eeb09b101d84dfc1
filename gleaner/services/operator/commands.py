"""`gleaner jobs|dead-letters|queues|sites|stats|health|workers|cleanup|schedules list`: the API from a terminal.

Every command prints a table (or `--json`: the API's own JSON) and exits 0, or prints the API's problem
and exits 1. They reach the gateway at GLEANER_API_URL with GLEANER_API_TOKEN (else GLEANER_ADMIN_TOKEN).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gleaner.services.operator.client import ApiError, GatewayClient
from gleaner.services.operator.tables import Column, block, field, table
from gleaner.shared.config import Config

Command = Callable[[GatewayClient, argparse.Namespace], Awaitable[tuple[Any, str]]]

JOB_COLUMNS: list[Column] = [
    ("ID", field("id")),
    ("KIND", field("kind")),
    ("STATE", field("state")),
    ("ATTEMPT", lambda j: f"{j.get('attempt')}/{j.get('max_attempts')}"),
    ("QUEUE", field("queue")),
    ("SITE", field("site")),
    ("CREATED", field("created_at")),
    ("ERROR", lambda j: (j.get("error") or {}).get("class")),
]
ATTEMPT_COLUMNS: list[Column] = [
    ("ATTEMPT", field("attempt")),
    ("OUTCOME", field("outcome")),
    ("WORKER", field("worker")),
    ("STARTED", field("started_at")),
    ("FINISHED", field("finished_at")),
    ("ERROR", lambda a: a.get("error_class")),
    ("MESSAGE", field("error_message")),
]
LETTER_COLUMNS: list[Column] = [
    ("ID", field("id")),
    ("KIND/REASON", lambda d: d.get("kind") or d.get("reason")),
    ("QUEUE", field("queue")),
    ("ERROR", lambda d: (d.get("error") or {}).get("class") or d.get("detail")),
    ("WHEN", lambda d: d.get("finished_at") or d.get("created_at")),
]
SITE_COLUMNS: list[Column] = [
    ("NAME", field("name")),
    ("PER HOUR", field("requests_per_hour")),
    ("BURST", field("burst")),
    ("MIN DELAY", field("min_delay_s")),
    ("CONCURRENCY", field("max_concurrency")),
    ("RUNNING", lambda s: (s.get("state") or {}).get("running_jobs")),
    ("NEXT REQUEST", lambda s: (s.get("state") or {}).get("next_request_at")),
]
GROUP_COLUMNS: list[Column] = [
    ("SITE", field("site")),
    ("KIND", field("kind")),
    ("JOBS", field("jobs")),
    ("SUCCEEDED", lambda g: g["states"].get("succeeded")),
    ("FAILED", lambda g: g["states"].get("failed")),
    ("SUCCESS", lambda g: None if g.get("success_rate") is None else f"{g['success_rate']:.0%}"),
    ("P50 S", lambda g: g["duration_s"].get("p50")),
    ("P95 S", lambda g: g["duration_s"].get("p95")),
    ("PAGES", field("pages_fetched")),
]
QUEUE_COLUMNS: list[Column] = [
    ("NAME", field("name")),
    ("PAUSED", field("paused")),
    ("READY", field("ready")),
    ("UNACKED", field("unacked")),
    ("CONSUMERS", field("consumers")),
    ("QUEUED", field("queued")),
    ("RUNNING", field("running")),
    ("RETRYING", field("retrying")),
    ("SCHEDULED", field("scheduled")),
    ("OLDEST WAIT S", lambda q: None if q.get("oldest_waiting_s") is None else round(q["oldest_waiting_s"], 1)),
]
WORKER_COLUMNS: list[Column] = [
    ("ID", field("id")),
    ("ALIVE", field("alive")),
    ("QUEUES", lambda w: ",".join(w["queues"])),
    ("RUNNING", lambda w: f"{w['running']}/{w['concurrency']}"),
    ("STARTED", field("started_at")),
    ("LAST SEEN", field("last_seen_at")),
    ("STOPPED", field("stopped_at")),
]
SCHEDULE_COLUMNS: list[Column] = [
    ("ID", field("id")),
    ("NAME", field("name")),
    ("TIMING", lambda s: s.get("cron") or (s.get("interval_s") and f"every {s['interval_s']:g}s") or s.get("at")),
    ("ENABLED", field("enabled")),
    ("PAUSED", field("paused")),
    ("NEXT FIRE", field("next_fire_at")),
    ("LAST FIRE", field("last_fire_at")),
]


def add_parsers(commands: Any) -> None:
    """Add the operator commands to the `gleaner` sub-command parsers."""
    jobs = commands.add_parser("jobs", help="list, show, submit, cancel and retry jobs (through the gateway)")
    jobs_actions = jobs.add_subparsers(dest="action", required=True)
    listing = _json(jobs_actions.add_parser("list", help="newest first"))
    for name in ("state", "kind", "queue", "site"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--payload", help='JSON the payload contains, e.g. {"ticker": "PETR4"}')
    listing.add_argument("--limit", type=int, default=50)
    _json(jobs_actions.add_parser("show", help="a job and its attempts")).add_argument("id", type=int)
    submit = _json(jobs_actions.add_parser("submit", help="submit a job; --wait S to see it finish"))
    submit.add_argument("kind")
    submit.add_argument("--payload", default="{}", help="JSON object")
    for name in ("queue", "site"):
        submit.add_argument(f"--{name}")
    submit.add_argument("--priority", type=int)
    submit.add_argument("--wait", type=float, help="seconds (up to 60) to wait for the job to finish")
    for action in ("cancel", "retry"):
        _json(jobs_actions.add_parser(action, help=f"{action} a job")).add_argument("id", type=int)
    letters = commands.add_parser("dead-letters", help="list and requeue dead letters")
    letters_actions = letters.add_subparsers(dest="action", required=True)
    letters_list = _json(letters_actions.add_parser("list", help="failed jobs and poison messages, newest first"))
    requeue = _json(letters_actions.add_parser("requeue", help="requeue failed jobs by filter"))
    for parser in (letters_list, requeue):
        parser.add_argument("--kind")
        parser.add_argument("--queue")
        parser.add_argument("--limit", type=int, default=100)
    requeue.add_argument("--error-class")
    resolve = _json(letters_actions.add_parser("resolve", help="mark a dead letter resolved (kept, off the list)"))
    resolve.add_argument("id", help="job-<id> or message-<id>")
    resolve.add_argument("--note")
    sites = _json(commands.add_parser("sites", help="sites: policy and live rate-limit state"))
    sites.add_argument("name", nargs="?")
    stats = _json(commands.add_parser("stats", help="jobs by site and kind over the last hours"))
    stats.add_argument("--hours", type=float, default=1.0)
    stats.add_argument("--site")
    stats.add_argument("--kind")
    _json(commands.add_parser("health", help="the gateway's view of PostgreSQL and RabbitMQ"))
    queues = commands.add_parser("queues", help="queue depths and counts; pause or resume a queue")
    queue_actions = queues.add_subparsers(dest="action")
    _json(queues)
    for action in ("pause", "resume"):
        parser = _json(queue_actions.add_parser(action, help=f"{action} taking a queue's jobs"))
        parser.add_argument("name")
        if action == "pause":
            parser.add_argument("--reason")
    _json(commands.add_parser("workers", help="workers alive or seen within the hour, and how busy they are"))
    cleanup = _json(commands.add_parser("cleanup", help="prune finished jobs past retention now (needs admin)"))
    cleanup.add_argument("--days", type=float, help="older than this many days (default: GLEANER_RETENTION_DAYS)")


def add_schedule_list(schedule_actions: Any) -> None:
    _json(schedule_actions.add_parser("list", help="every schedule with its next and last fire"))


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    return parser


def run(args: argparse.Namespace, config: Config) -> int:
    """Run one operator command; the printed output is the command's, errors go to the caller."""
    command = COMMANDS[(args.command, getattr(args, "action", None))]
    body, text = asyncio.run(_call(command, args, config))
    print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() if args.json else text)
    return 0


async def _call(command: Command, args: argparse.Namespace, config: Config) -> tuple[Any, str]:
    async with GatewayClient(config.gateway_api_url, config.api_token or config.admin_token) as api:
        return await command(api, args)


async def jobs_list(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    filters = {"state": args.state, "kind": args.kind, "queue": args.queue, "site": args.site, "payload": args.payload}
    body = await api.get("/jobs", page_size=args.limit, **filters)
    return body, table(body["jobs"], JOB_COLUMNS)


async def jobs_show(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    job = await api.get(f"/jobs/{args.id}")
    attempts = (await api.get(f"/jobs/{args.id}/attempts"))["attempts"]
    text = block(job, list(job)) + "\n\nattempts:\n" + table(attempts, ATTEMPT_COLUMNS)
    last_trace = next((a["error_traceback"] for a in reversed(attempts) if a.get("error_traceback")), None)
    if last_trace:
        text += "\n\nlast traceback:\n" + last_trace.rstrip()
    return {"job": job, "attempts": attempts}, text


async def jobs_submit(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    try:
        payload = orjson.loads(args.payload)
    except orjson.JSONDecodeError as exc:
        raise ApiError(f"--payload is not JSON: {exc}") from None
    spec = {"kind": args.kind, "payload": payload, "queue": args.queue, "site": args.site, "priority": args.priority}
    job = await api.submit("/jobs", {k: v for k, v in spec.items() if v is not None})
    if args.wait:
        job = await api.get(f"/jobs/{job['id']}", wait=args.wait)
    return job, f"job {job['id']} {job['state']}"


async def jobs_cancel(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    job = await api.post(f"/jobs/{args.id}/cancel")
    return job, f"job {job['id']} {job['state']}" + (" (cancel requested)" if job.get("cancel_requested") else "")


async def jobs_retry(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    job = await api.post(f"/jobs/{args.id}/retry")
    return job, f"job {job['id']} {job['state']}"


async def letters_list(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    body = await api.get("/dead-letters", kind=args.kind, queue=args.queue, limit=args.limit)
    return body, table(body["dead_letters"], LETTER_COLUMNS)


async def letters_requeue(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    filters = {"kind": args.kind, "queue": args.queue, "error_class": args.error_class, "limit": args.limit}
    body = await api.post("/dead-letters/requeue", {k: v for k, v in filters.items() if v is not None})
    return body, f"requeued {body['requeued']} failed job(s)"


async def letters_resolve(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    await api.post(f"/dead-letters/{args.id}/resolve", {"note": args.note} if args.note else None)
    return {"resolved": args.id}, f"{args.id} resolved"


async def sites(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    if args.name:
        site = await api.get(f"/sites/{args.name}")
        return site, block(site, list(site))
    body = await api.get("/sites")
    return body, table(body["sites"], SITE_COLUMNS)


async def stats(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    body = await api.get("/stats", window_s=args.hours * 3600, site=args.site, kind=args.kind)
    head = f"{body['since']} to {body['until']}\n"
    return body, head + table(body["groups"], GROUP_COLUMNS)


async def health(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    healthy, body = await api.health()
    lines = [f"gateway: {body['status']}"] + [
        f"  {name}: " + ("ok" if check["ok"] else f"DOWN ({check.get('error')})")
        for name, check in body["checks"].items()
    ]
    if not healthy:
        raise ApiError("\n".join(lines))
    return body, "\n".join(lines)


async def queues_list(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    body = await api.get("/queues")
    return body, table(body["queues"], QUEUE_COLUMNS)


async def queue_pause(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    queue = await api.post(f"/queues/{args.name}/pause", {"reason": args.reason} if args.reason else None)
    return queue, f"queue {queue['name']} paused"


async def queue_resume(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    queue = await api.post(f"/queues/{args.name}/resume")
    return queue, f"queue {queue['name']} resumed"


async def workers(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    body = await api.get("/workers")
    head = f"{body['alive']} alive, running {body['running']} of {body['capacity']}\n"
    return body, head + table(body["workers"], WORKER_COLUMNS)


async def cleanup(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    payload = {"retention_days": args.days} if args.days is not None else {}
    job = await api.post("/jobs", {"kind": "maintenance.prune", "payload": payload})
    job = await api.get(f"/jobs/{job['id']}", wait=60)
    if job["state"] != "succeeded":
        return job, f"job {job['id']} {job['state']}: {job.get('error')}"
    removed = {name: n for name, n in job["result"].items() if name != "retention_days"}
    return job, "removed " + ", ".join(f"{n} {table_name}" for table_name, n in removed.items())


async def schedules_list(api: GatewayClient, args: argparse.Namespace) -> tuple[Any, str]:
    body = await api.get("/schedules", page_size=500)
    return body, table(body["schedules"], SCHEDULE_COLUMNS)


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("jobs", "list"): jobs_list,
    ("jobs", "show"): jobs_show,
    ("jobs", "submit"): jobs_submit,
    ("jobs", "cancel"): jobs_cancel,
    ("jobs", "retry"): jobs_retry,
    ("dead-letters", "list"): letters_list,
    ("dead-letters", "requeue"): letters_requeue,
    ("dead-letters", "resolve"): letters_resolve,
    ("sites", None): sites,
    ("stats", None): stats,
    ("health", None): health,
    ("workers", None): workers,
    ("queues", None): queues_list,
    ("queues", "pause"): queue_pause,
    ("queues", "resume"): queue_resume,
    ("cleanup", None): cleanup,
    ("schedules", "list"): schedules_list,
}
