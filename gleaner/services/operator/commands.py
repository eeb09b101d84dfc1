"""`gleaner jobs|dead-letters|queues|sites|stats|health|workers|cleanup|schedules list`: the API from a terminal.

Every command prints a table (or `--json`: the API's own JSON) and exits 0, or prints the API's problem
and exits 1. They reach the gateway through `gleaner.Client` (the project's one HTTP client) at
GLEANER_API_URL with GLEANER_API_TOKEN (else GLEANER_ADMIN_TOKEN).
"""

from __future__ import annotations

import argparse
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from gleaner import ApiConnectionError, Client, ClientError, RetryPolicy, Unauthorized, WaitTimeout
from gleaner.json_types import JsonObject
from gleaner.services.operator.tables import Column, block, field, table, tree_line, tree_lines
from gleaner.shared.config import Config
from gleaner.shared.errors import GleanerError

Command = Callable[[Client, argparse.Namespace], tuple[Any, str]]

# the largest page GET /jobs serves; `jobs list --limit` follows pages past it
MAX_PAGE = 500
# how many jobs `jobs show` prints of a tree (and of a job's dependencies)
MAX_TREE = 200
# what `jobs submit --wait` exits 1 for (the job ran and did not succeed)
UNSUCCESSFUL = ("failed", "cancelled")

TIMEOUT_S = 15.0  # per request; a `wait` adds the time the gateway holds it
# A request the gateway did not act on, or a submission whose answer was lost (the connection dropped) or that met a
# gateway unable to answer now (503, or a proxy's 502/504), is sent again (a submission with the same
# Idempotency-Key, so the gateway answers with the job it created instead of creating a second one): pauses of
# 0.5 s doubling to 8 s, ~15 s in all, to ride out a gateway restart.
RESENDS = RetryPolicy(attempts=6, base_s=0.5, cap_s=8.0)

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
    ("NEXT REQUEST", lambda s: (s.get("state") or {}).get("next_allowed_at")),
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
REPORT_COLUMNS: list[Column] = [
    *GROUP_COLUMNS[:-1],
    ("DEAD", field("dead_letters")),
    ("TOP ERRORS", lambda g: ", ".join(f"{e['error_class']} ({e['attempts']})" for e in g["error_classes"][:3])),
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
    ("HIGH", lambda q: (q.get("waiting_by_band") or {}).get("high")),
    ("NORMAL", lambda q: (q.get("waiting_by_band") or {}).get("normal")),
    ("LOW", lambda q: (q.get("waiting_by_band") or {}).get("low")),
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
    ("DESCRIPTION", field("description")),
    ("ENABLED", field("enabled")),
    ("PAUSED", field("paused")),
    ("NEXT FIRE", field("next_fire_at")),
    ("LAST FIRE", field("last_fire_at")),
]


SCHEDULE_ACTIONS = {
    "trigger": "fire one job now (all of a fan-out), whatever the pauses",
    "pause": "pause a schedule",
    "resume": "resume a schedule (missed slots follow its misfire policy)",
    "preview": "the next fire times",
}
SCHEDULER_ACTIONS = {
    "status": "leader, pause, last tick, due backlog, fire lag (and the effective settings)",
    "pause": "no schedule fires until resumed (triggers and run still do)",
    "resume": "resume every schedule (missed slots follow each one's misfire policy)",
    "run": "fire what is due now, even while paused",
}


def add_parsers(commands: Any) -> None:
    """Add the operator commands to the `gleaner` sub-command parsers."""
    jobs = commands.add_parser("jobs", help="list, show, submit, cancel and retry jobs (through the gateway)")
    jobs_actions = jobs.add_subparsers(dest="action", required=True)
    listing = _json(jobs_actions.add_parser("list", help="newest first"))
    for name in ("state", "kind", "queue", "site"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--payload", help='JSON the payload contains, e.g. {"ticker": "PETR4"}')
    listing.add_argument("--limit", type=int, default=50, help="how many jobs (pages are followed past 500)")
    show = _json(jobs_actions.add_parser("show", help="a job, its attempts, its dependencies and its tree"))
    show.add_argument("id", type=int)
    submit = _json(jobs_actions.add_parser("submit", help="submit a job; --wait S to see it finish"))
    submit.add_argument("kind")
    submit.add_argument("--payload", default="{}", help="JSON object")
    for name in ("queue", "site"):
        submit.add_argument(f"--{name}")
    submit.add_argument("--priority", type=_priority, help="0-9 (9 first) or high, normal, low")
    submit.add_argument("--wait", type=float, help="seconds (up to 60) to wait for the job to finish")
    for action in ("cancel", "retry"):
        _json(jobs_actions.add_parser(action, help=f"{action} a job")).add_argument("id", type=int)
    cancel = jobs_actions.choices["cancel"]
    cancel.add_argument("--tree", action="store_true", help="also its waiting descendants and its dependents")
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
    report = _json(commands.add_parser("report", help="per site and kind: outcomes, durations, errors, dead letters"))
    report.add_argument("--hours", type=float, default=24.0, help="how far back (default 24)")
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
    parsers = _actions(schedule_actions, SCHEDULE_ACTIONS)
    for parser in parsers.values():
        parser.add_argument("schedule", help="its name or id")
    parsers["preview"].add_argument("--count", type=int, default=10, help="how many (up to 100)")


def add_scheduler_actions(scheduler: argparse.ArgumentParser) -> None:
    """`gleaner scheduler` alone runs the service; with an action it asks the gateway."""
    _actions(scheduler.add_subparsers(dest="action", required=False), SCHEDULER_ACTIONS)


def _actions(subparsers: Any, helps: dict[str, str]) -> dict[str, argparse.ArgumentParser]:
    return {action: _json(subparsers.add_parser(action, help=text)) for action, text in helps.items()}


def _priority(value: str) -> int | str:
    """A number or a name; the gateway judges it (a 422 names the field)."""
    return int(value) if value.isascii() and value.isdigit() else value


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    return parser


def run(args: argparse.Namespace, config: Config) -> int:
    """Run one operator command; the printed output is the command's, errors (GleanerError) go to the caller."""
    command = COMMANDS[(args.command, getattr(args, "action", None))]
    url = config.gateway_api_url
    # httpx logs every request at INFO: a terminal shows the command's output and its errors only
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        with Client(url, config.api_token or config.admin_token, timeout_s=TIMEOUT_S, retry=RESENDS) as api:
            body, text = command(api, args)
    except ApiConnectionError as exc:
        raise GleanerError(f"cannot reach the gateway at {url} (GLEANER_API_URL): {exc}") from None
    except Unauthorized as exc:
        raise GleanerError(f"{exc} — {token_hint(config)}") from None
    except ClientError as exc:  # the API's problem: status, title, detail and each field error
        raise GleanerError(str(exc)) from None
    print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() if args.json else text)
    return 0


def token_hint(config: Config) -> str:
    """What a 401 tells the user: the variables the key was read from, which one was sent, and the fix."""
    if config.api_token:
        sent = "sent GLEANER_API_TOKEN"
    elif config.admin_token:
        sent = "GLEANER_API_TOKEN is unset, sent GLEANER_ADMIN_TOKEN"
    else:
        sent = "GLEANER_API_TOKEN and GLEANER_ADMIN_TOKEN are both unset, sent no key"
    return f"{sent}; export GLEANER_API_TOKEN=<an API key> (`make run` prints the line for its admin token)"


def _raw(answer: Any) -> dict[str, Any]:
    """The API's JSON of a typed answer: the tables and `--json` show what the API sent."""
    raw: dict[str, Any] = answer.raw
    return raw


def _raws(answers: Iterable[Any]) -> list[dict[str, Any]]:
    return [_raw(answer) for answer in answers]


def _present(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _json_object(text: str, option: str) -> JsonObject:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise GleanerError(f"{option} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise GleanerError(f"{option} must be a JSON object")
    return value


def jobs_list(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    payload = None if args.payload is None else _json_object(args.payload, "--payload")
    filters = _present(state=args.state, kind=args.kind, queue=args.queue, site=args.site, payload=payload)
    if args.limit < 1:
        raise GleanerError("--limit must be at least 1")
    jobs = _raws(itertools.islice(api.jobs.list(page_size=min(args.limit, MAX_PAGE), **filters), args.limit))
    return {"jobs": jobs}, table(jobs, JOB_COLUMNS)


def jobs_show(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    job = _raw(api.jobs.get(args.id))
    attempts = _raws(api.jobs.attempts(args.id))
    text = block(job, list(job)) + "\n\nattempts:\n" + table(attempts, ATTEMPT_COLUMNS)
    last_trace = next((a["error_traceback"] for a in reversed(attempts) if a.get("error_traceback")), None)
    if isinstance(last_trace, str):
        text += "\n\nlast traceback:\n" + last_trace.rstrip()
    dependencies = _raws(itertools.islice(api.jobs.dependencies(args.id, page_size=MAX_PAGE), MAX_TREE))
    if dependencies:
        text += "\n\ndepends on:\n" + "\n".join(tree_line(d) for d in reversed(dependencies))
    tree = _tree(api, job)
    if len(tree) > 1:
        text += "\n\ntree:\n" + "\n".join(tree_lines(tree))
    children = [node for depth, node in tree if depth == 1]
    return {"job": job, "attempts": attempts, "children": children, "dependencies": dependencies}, text


def _tree(api: Client, root: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The job and its descendants (children by id), depth first, at most MAX_TREE of them."""
    nodes: list[tuple[int, dict[str, Any]]] = []
    stack: list[tuple[int, dict[str, Any]]] = [(0, root)]
    while stack and len(nodes) < MAX_TREE:
        depth, node = stack.pop()
        nodes.append((depth, node))
        below = _raws(itertools.islice(api.jobs.children(node["id"], page_size=MAX_PAGE), MAX_TREE))
        stack.extend((depth + 1, child) for child in below)  # newest first: the oldest child pops first
    return nodes


def jobs_submit(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    payload = _json_object(args.payload, "--payload")
    options = _present(queue=args.queue, site=args.site, priority=args.priority)
    job = api.jobs.submit(args.kind, payload, **options)
    if args.wait:
        try:
            job = api.jobs.wait(job.id, timeout_s=args.wait)
        except WaitTimeout as exc:
            job = exc.job
        if job.state in UNSUCCESSFUL:
            error = job.error if isinstance(job.error, dict) else {}
            raise GleanerError(f"job {job.id} {job.state}: {error.get('class')}: {error.get('message')}")
    return _raw(job), f"job {job.id} {job.state}"


def jobs_cancel(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    job = api.jobs.cancel(args.id, tree=args.tree)
    return _raw(job), f"job {job.id} {job.state}" + (" (cancel requested)" if job.cancel_requested else "")


def jobs_retry(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    job = api.jobs.retry(args.id)
    return _raw(job), f"job {job.id} {job.state}"


def letters_list(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    letters = _raws(api.dead_letters.list(kind=args.kind, queue=args.queue, limit=args.limit))
    return {"dead_letters": letters}, table(letters, LETTER_COLUMNS)


def letters_requeue(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    requeued = api.dead_letters.requeue_many(
        kind=args.kind, queue=args.queue, error_class=args.error_class, limit=args.limit
    )
    return {"requeued": requeued}, f"requeued {requeued} failed job(s)"


def letters_resolve(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    api.dead_letters.resolve(args.id, args.note)
    return {"resolved": args.id}, f"{args.id} resolved"


def sites(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    if args.name:
        site = _raw(api.sites.get(args.name))
        return site, block(site, list(site))
    listed = _raws(api.sites.list())
    return {"sites": listed}, table(listed, SITE_COLUMNS)


def stats(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    body = _raw(api.stats(window_s=args.hours * 3600, site=args.site, kind=args.kind))
    head = f"{body['since']} to {body['until']}\n"
    return body, head + table(body["groups"], GROUP_COLUMNS)


def report(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    body = _raw(api.report(hours=args.hours))
    errors = ", ".join(f"{e['error_class']} ({e['attempts']})" for e in body["error_classes"]) or "none"
    letters = body["dead_letters"]
    messages = ", ".join(f"{reason} {n}" for reason, n in letters["messages"].items()) or "none"
    lines = [
        f"{body['since']} to {body['until']} ({body['hours']:g} h)",
        table(body["groups"], REPORT_COLUMNS),
        "",
        f"error classes: {errors}",
        f"dead letters: {letters['failed_jobs']} failed job(s); poison messages: {messages}",
    ]
    return body, "\n".join(lines)


def health(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    body = _raw(api.health())
    lines = [f"gateway: {body['status']}"] + [
        f"  {name}: " + ("ok" if check["ok"] else f"DOWN ({check.get('error')})")
        for name, check in body["checks"].items()
    ]
    if body["status"] != "ok":
        raise GleanerError("\n".join(lines))
    return body, "\n".join(lines)


def queues_list(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    listed = _raws(api.queues.list())
    return {"queues": listed}, table(listed, QUEUE_COLUMNS)


def queue_pause(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    queue = api.queues.pause(args.name, args.reason or None)
    return _raw(queue), f"queue {queue.name} paused"


def queue_resume(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    queue = api.queues.resume(args.name)
    return _raw(queue), f"queue {queue.name} resumed"


def workers(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    body = _raw(api.workers())
    head = f"{body['alive']} alive, running {body['running']} of {body['capacity']}\n"
    return body, head + table(body["workers"], WORKER_COLUMNS)


def cleanup(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    submitted = api.jobs.submit("maintenance.prune", _present(retention_days=args.days))
    try:
        job = api.jobs.wait(submitted.id, timeout_s=60)
    except WaitTimeout as exc:
        job = exc.job
    if job.state != "succeeded" or not isinstance(job.result, dict):
        return _raw(job), f"job {job.id} {job.state}: {job.error}"
    removed = {name: n for name, n in job.result.items() if name != "retention_days"}
    return _raw(job), "removed " + ", ".join(f"{n} {table_name}" for table_name, n in removed.items())


def schedules_list(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    listed = _raws(api.schedules.list(page_size=500))
    return {"schedules": listed, "next_after_id": None}, table(listed, SCHEDULE_COLUMNS)


def schedule_action(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    schedule = _schedule_ref(args.schedule)
    if args.action == "trigger":
        job = api.schedules.trigger(schedule)
        return _raw(job), f"job {job.id} {job.state} (schedule {args.schedule})"
    if args.action == "preview":
        preview = api.schedules.preview(schedule, args.count)
        return _raw(preview), "\n".join(f"{t.isoformat()}" for t in preview.fire_times)
    changed = api.schedules.pause(schedule) if args.action == "pause" else api.schedules.resume(schedule)
    return _raw(changed), f"schedule {changed.name} " + ("paused" if changed.paused else "resumed")


def _schedule_ref(value: str) -> int | str:
    """An id (digits) or a name: the API takes either."""
    return int(value) if value.isascii() and value.isdigit() else value


def scheduler(api: Client, args: argparse.Namespace) -> tuple[Any, str]:
    actions = {"status": api.scheduler.status, "pause": api.scheduler.pause, "resume": api.scheduler.resume}
    status = actions.get(args.action, api.scheduler.run)()
    body = _raw(status)
    text = block(body, list(body))
    if args.action == "status":
        settings = _raw(api.scheduler.config())
        return body | {"config": settings}, text + "\n\nsettings:\n" + block(settings, list(settings))
    return body, text


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
    ("report", None): report,
    ("health", None): health,
    ("workers", None): workers,
    ("queues", None): queues_list,
    ("queues", "pause"): queue_pause,
    ("queues", "resume"): queue_resume,
    ("cleanup", None): cleanup,
    ("schedules", "list"): schedules_list,
    **{("schedules", action): schedule_action for action in SCHEDULE_ACTIONS},
    **{("scheduler", action): scheduler for action in SCHEDULER_ACTIONS},
}
