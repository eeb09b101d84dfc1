"""Hostile input against a live gateway: every class issue 11 found gets a 4xx problem naming the field, no 5xx,
and nothing is stored; a client sending NUL-poisoned payloads cannot fail another client's submissions.

The counts (requests per class, 5xx seen) are printed at the end of the module for the issue's note.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from yarl import URL

from gleaner.services.gateway.auth import hash_key
from gleaner.services.gateway.pagination import filter_hash
from tests.support.contract import checked_session
from tests.support.services import ADMIN_TOKEN
from tests.support.stack import Stack

PROBLEM = "application/problem+json"
READ_KEY, WRITE_KEY = "glk_hostile_reader_0123456789", "glk_hostile_writer_0123456789"
NUL = "\u0000"
LATE, EARLY = "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"
BAD, DENIED = (400,), (403,)


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile request and what must come back: a status in `statuses`, and `field` among the errors."""

    cls: str
    method: str
    path: str
    who: str = "admin"
    body: Any = None
    raw: bytes | None = None
    params: dict[str, str] | None = None
    statuses: tuple[int, ...] = (422,)
    field: str | None = None


@dataclass
class Tally:
    """Requests sent and 5xx seen per input class, for the printed summary."""

    sent: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        classes = ", ".join(f"{cls} {n}" for cls, n in sorted(self.sent.items()))
        return (
            f"hostile requests: {sum(self.sent.values())} ({classes}); "
            f"5xx: {sum(self.server_errors.values())} {dict(self.server_errors) or ''}"
        )


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    counts = Tally()
    yield counts
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None and counts.sent:
        with capture.global_and_fixture_disabled():
            print("\n" + counts.line())


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    await connection.execute(
        "INSERT INTO api_keys (name, key_hash, scopes) VALUES ('reader', $1, '{jobs:read}'), "
        "('writer', $2, '{jobs:read,jobs:write}')",
        hash_key(READ_KEY),
        hash_key(WRITE_KEY),
    )
    yield connection
    await connection.close()


@pytest.fixture
async def base_url(stack: Stack, db: asyncpg.Connection) -> str:
    gateway = await stack.start("gateway")
    return gateway.url + "/api/v1"


def forged_token(last: int, filters: dict[str, Any]) -> str:
    """A page token as its old, unsigned format let anyone write one (the filter hash is computable)."""
    body = json.dumps({"last": last, "f": filter_hash(filters)}).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def nested(depth: int) -> bytes:
    """A JSON object `depth` levels deep, as text (orjson would refuse to encode it past 254)."""
    return b'{"a": ' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def nul_cases() -> list[Case]:
    """A NUL in any filter, body string or key: most of them need no more than a read key."""
    queries = [
        ("/jobs", name) for name in ("kind", "state", "queue", "site", "payload.x", "created_after", "page_token")
    ]
    queries += [("/stats", "site"), ("/stats", "kind"), ("/dead-letters", "kind"), ("/dead-letters", "queue")]
    queries += [("/schedules", "page_size"), ("/jobs/1/results", "page_token"), ("/jobs/1", "wait")]
    cases = [Case("nul", "GET", path, "read", params={name: f"x{NUL}y"}, field=name) for path, name in queries]
    cases += [
        Case("nul", "GET", "/jobs", "read", params={"payload": '{"x": "\\u0000"}'}, field="payload.x"),
        Case("nul", "GET", "/jobs", "read", params={f"payload.x{NUL}": "1"}, field="payload.x%00"),
    ]
    bodies = [
        ({"kind": f"no{NUL}op"}, "kind"),
        ({"kind": "noop", "payload": {"x": f"a{NUL}"}}, "payload.x"),
        ({"kind": "noop", "payload": {f"k{NUL}": 1}}, "payload.k\\u0000"),
        ({"kind": "noop", "payload": {"list": ["ok", NUL]}}, "payload.list[1]"),
        ({"kind": "noop", "dedupe_key": NUL}, "dedupe_key"),
        ({"kind": "noop", "site": f"shop{NUL}"}, "site"),
        ({"kind": "noop", "queue": NUL}, "queue"),
    ]
    cases += [Case("nul", "POST", "/jobs", "write", body=body, field=name) for body, name in bodies]
    cases += [
        Case("nul", "POST", "/jobs/batch", "write", body={"jobs": [{"kind": "noop", "payload": {"x": NUL}}]}),
        Case("nul", "POST", "/queues/default/pause", body={"reason": f"maintenance{NUL}"}, field="reason"),
        Case("nul", "POST", "/dead-letters/job-1/resolve", body={"note": NUL}, field="note"),
        Case("nul", "POST", "/dead-letters/requeue", body={"kind": NUL}, field="kind"),
        Case("nul", "PUT", "/sites/shop", body={"user_agent": f"bot{NUL}"}, field="user_agent"),
        Case("nul", "POST", "/schedules", body=schedule(name=f"n{NUL}"), field="name"),
        Case("nul", "POST", "/schedules", body=schedule(job={"kind": "noop", "payload": {"x": NUL}})),
        Case("nul", "POST", "/schedules", body=schedule(timezone=f"UTC{NUL}", cron="* * * * *", interval_s=None)),
        Case("nul", "POST", "/schedules", body=schedule(cron=f"* * * * *{NUL}", interval_s=None), field="cron"),
        Case("nul", "PATCH", "/schedules/1", body={"job": {"kind": "noop", "payload": {NUL: 1}}}),
    ]
    return cases


def schedule(**fields: Any) -> dict[str, Any]:
    body = {"name": "hostile", "interval_s": 60, "job": {"kind": "noop"}} | fields
    return {name: value for name, value in body.items() if value is not None}


def timestamp_cases() -> list[Case]:
    """Instants PostgreSQL holds but Python does not once the offset applies (years 0 and 10000)."""
    cases = []
    for instant in (LATE, EARLY):
        cases += [
            Case("timestamp", "POST", "/jobs", "write", body={"kind": "noop", "run_at": instant}, field="run_at"),
            Case("timestamp", "POST", "/jobs/batch", "write", body={"jobs": [{"kind": "noop", "run_at": instant}]}),
            Case("timestamp", "POST", "/schedules", body=schedule(at=instant, interval_s=None), field="at"),
            Case("timestamp", "PATCH", "/schedules/1", body={"at": instant, "cron": None}, field="at"),
            Case("timestamp", "GET", "/jobs", "read", params={"created_after": instant}, field="created_after"),
            Case("timestamp", "GET", "/jobs", "read", params={"created_before": instant}, field="created_before"),
            Case("timestamp", "GET", "/stats", "read", params={"since": instant}, field="since"),
        ]
    return cases


def number_cases() -> list[Case]:
    """Numbers past what the arithmetic or the columns hold, and the integers orjson would turn into floats."""
    return [
        Case("number", "POST", "/schedules", body=schedule(interval_s=1e308), field="interval_s"),
        Case("number", "POST", "/schedules", body=schedule(interval_s=0.5), field="interval_s"),
        Case("number", "PATCH", "/schedules/1", body={"interval_s": 1e308, "cron": None}, field="interval_s"),
        Case("number", "POST", "/schedules", body=schedule(misfire_grace_s=1e308), field="misfire_grace_s"),
        Case("number", "POST", "/schedules", body=schedule(jitter=1e308), field="jitter"),
        Case("number", "POST", "/schedules", body=schedule(cron="1," * 5000 + "2 * * * *", interval_s=None)),
        Case("number", "POST", "/jobs", "write", body={"kind": "noop", "delay_s": 1e308}, field="delay_s"),
        Case("number", "POST", "/jobs", "write", body={"kind": "noop", "timeout_s": 1e308}, field="timeout_s"),
        Case("number", "POST", "/jobs", "write", body={"kind": "noop", "max_attempts": 1e300}, field="max_attempts"),
        Case("number", "POST", "/jobs", "write", raw=b'{"kind": "noop", "priority": 18446744073709551616}'),
        Case("number", "POST", "/jobs", "write", raw=b'{"kind": "noop", "payload": {"n": 18446744073709551616}}'),
        Case("number", "POST", "/jobs", "write", raw=b'{"kind": "noop", "payload": {"n": -9223372036854775809}}'),
        Case("number", "PUT", "/sites/shop", body={"requests_per_hour": 1e-9}, field="requests_per_hour"),
        Case("number", "PUT", "/sites/shop", body={"requests_per_hour": 1e-300}, field="requests_per_hour"),
        Case("number", "PUT", "/sites/shop", body={"min_delay_s": 1e308}, field="min_delay_s"),
        Case("number", "GET", "/jobs", "read", params={"page_size": "1_0"}, field="page_size"),
        Case("number", "GET", "/jobs", "read", params={"schedule_id": "9223372036854775808"}, field="schedule_id"),
    ]


def structure_cases() -> list[Case]:
    """Documents nested past the limit, keys given twice, text that is not JSON."""
    deep = b'{"kind": "noop", "payload": ' + nested(1000) + b"}"
    return [
        Case("structure", "POST", "/jobs", "write", raw=deep),
        Case("structure", "POST", "/jobs/batch", "write", raw=b'{"jobs": [{"kind": "noop"}, ' + deep + b"]}"),
        Case("structure", "POST", "/schedules", raw=b'{"name": "deep", "interval_s": 60, "job": ' + deep + b"}"),
        Case(
            "structure",
            "POST",
            "/jobs",
            "write",
            raw=b'{"kind": "noop", "payload": ' + nested(2000) + b"}",
            statuses=(400,),
        ),
        Case("structure", "POST", "/jobs", "write", raw=b'{"kind": "noop", "kind": "maintenance.prune"}', field="kind"),
        Case("structure", "POST", "/jobs", "write", raw=b'{"kind": "noop", "payload": {"a": 1, "a": 2}}'),
        Case(
            "structure", "POST", "/jobs", "write", raw=b'{"kind": "noop", "payload": {"s": "\\ud800"}}', statuses=(400,)
        ),
        Case("structure", "POST", "/jobs", "write", raw=b'{"kind": "noop", "payload": "\xff"}', statuses=(400,)),
        Case("structure", "GET", "/jobs", "read", params={"payload": '{"a": 1, "a": 2}'}, field="payload.a"),
    ]


def token_and_id_cases() -> list[Case]:
    """Forged page tokens and ids that str.isdigit() or int() would take."""
    forged = [forged_token(2**63, {}), forged_token(2**64, {}), forged_token(-1, {}), "e30", "x.y"]
    cases = [
        Case("token", "GET", "/jobs", "read", params={"page_token": token}, field="page_token") for token in forged
    ]
    cases.append(
        Case("token", "GET", "/jobs/1/results", "read", params={"page_token": forged_token(2**63, {"job_id": 1})})
    )
    ids = ["/schedules/²", "/schedules/١٢", "/schedules/9223372036854775808", "/jobs/²", "/jobs/1_0"]
    ids += ["/jobs/%C2%B2/attempts", "/dead-letters/job-1%0A/requeue", "/api-keys/%C2%B2/revoke", "/sites/%00"]
    cases += [
        Case("id", "POST" if path.endswith(("requeue", "revoke")) else "GET", path, statuses=(404,)) for path in ids
    ]
    return cases


def submit_check_cases() -> list[Case]:
    """What would fail at run time is refused at submit: site names, scrape.pages URLs, maintenance payloads."""
    urls = {"kind": "scrape.pages"}
    cases = [
        Case("submit", "POST", "/jobs", "write", body={"kind": "noop", "site": "Foo:Bar"}, field="site"),
        Case("submit", "POST", "/jobs", "write", body={"kind": "noop", "site": "shop\n"}, field="site"),
        Case("submit", "POST", "/jobs", "write", body=urls | {"payload": {"urls": []}}, field="payload.urls"),
        Case("submit", "POST", "/jobs", "write", body=urls | {"payload": {"urls": ["https://a.example/"] * 1001}}),
        Case(
            "submit",
            "POST",
            "/jobs",
            "write",
            body=urls | {"payload": {"urls": ["https://a.example/", "http://127.0.0.1/"]}},
            field="payload.urls[1]",
        ),
        Case("submit", "POST", "/jobs", "write", body=urls | {"payload": {"urls": ["file:///etc/passwd"]}}),
        Case("submit", "POST", "/jobs", "write", body={"kind": "http.fetch", "payload": {}}, field="payload.url"),
    ]
    bad_payloads = [{"retention_days": 1e-9}, {"retention_days": 0}, {"retention_days": 1e308}, {"retention_day": 1}]
    cases += [
        Case(
            "privileged",
            "POST",
            "/jobs",
            body={"kind": "maintenance.prune", "payload": p},
            field=f"payload.{next(iter(p))}",
        )
        for p in bad_payloads
    ]
    cases += [
        Case("privileged", "POST", "/jobs", "write", body={"kind": "maintenance.prune"}, statuses=DENIED, field="kind"),
        Case(
            "privileged",
            "POST",
            "/jobs/batch",
            "write",
            body={"jobs": [{"kind": "noop"}, {"kind": "maintenance.requeue_failed"}]},
            statuses=DENIED,
            field="jobs[1].kind",
        ),
        Case("privileged", "POST", "/jobs/2/retry", "write", statuses=DENIED),
        Case(
            "privileged",
            "POST",
            "/schedules",
            "write",
            body=schedule(job={"kind": "maintenance.prune"}),
            statuses=DENIED,
        ),
        Case("privileged", "GET", "/api-keys", "write", statuses=DENIED),
    ]
    return cases


ALL_CASES = [
    *nul_cases(),
    *timestamp_cases(),
    *number_cases(),
    *structure_cases(),
    *token_and_id_cases(),
    *submit_check_cases(),
]
TOKENS = {"read": READ_KEY, "write": WRITE_KEY, "admin": ADMIN_TOKEN}


async def send(session: aiohttp.ClientSession, base_url: str, case: Case) -> tuple[int, str, Any, Any]:
    headers = {"Authorization": f"Bearer {TOKENS[case.who]}", "Content-Type": "application/json"}
    data = case.raw if case.raw is not None else (orjson.dumps(case.body) if case.body is not None else None)
    url = URL(base_url + case.path, encoded="%" in case.path)
    async with session.request(case.method, url, params=case.params, data=data, headers=headers) as response:
        raw = await response.read()
        body = orjson.loads(raw) if raw and PROBLEM in response.headers.get("Content-Type", "") else raw[:200]
        return response.status, response.headers.get("Content-Type", ""), body, response.headers


def mismatch(case: Case, status: int, ctype: str, body: Any, headers: Any) -> str | None:
    """What is wrong with the answer to a hostile case, or None."""
    fields = [e.get("field") for e in body.get("errors", [])] if isinstance(body, dict) else []
    problems = []
    if status not in case.statuses:
        problems.append(f"status {status} (wanted {case.statuses})")
    if not ctype.startswith(PROBLEM):
        problems.append(f"content type {ctype!r}")
    if case.field is not None and case.field not in fields:
        problems.append(f"fields {fields} lack {case.field!r}")
    if headers.get("X-Content-Type-Options") != "nosniff" or headers.get("Cache-Control") != "no-store":
        problems.append("security headers missing")
    if problems:
        return f"[{case.cls}] {case.method} {case.path} {case.params or ''}: {'; '.join(problems)}; body {body!r:.300}"
    return None


async def fingerprint(db: asyncpg.Connection) -> tuple[Any, ...]:
    """What a hostile request could have changed."""
    return (
        await db.fetchval("SELECT count(*) FROM jobs"),
        await db.fetchval("SELECT md5(string_agg(s::text, '|' ORDER BY id)) FROM schedules AS s"),
        await db.fetchval("SELECT count(*) FROM sites"),
        await db.fetchval("SELECT count(*) FROM queue_pauses"),
        await db.fetchval("SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL"),
        await db.fetchval("SELECT count(*) FROM jobs WHERE resolved_at IS NOT NULL OR state <> 'succeeded'"),
    )


async def test_every_hostile_input_gets_a_4xx_problem_naming_its_field_and_stores_nothing(
    base_url: str, db: asyncpg.Connection, tally: Tally
) -> None:
    # finished jobs 1 (noop) and 2 (maintenance: a write key may not re-run it)
    finished = "INSERT INTO jobs (kind, queue, state, finished_at) VALUES ($1, 'default', 'succeeded', now())"
    await db.execute(finished, "noop")
    await db.execute(finished, "maintenance.prune")
    before = await fingerprint(db)
    wrong = []
    async with checked_session() as session:
        for case in ALL_CASES:
            status, ctype, body, headers = await send(session, base_url, case)
            tally.sent[case.cls] += 1
            if status >= 500:
                tally.server_errors[case.cls] += 1
            problem = mismatch(case, status, ctype, body, headers)
            if problem:
                wrong.append(problem)
    assert not wrong, "\n".join(wrong)
    assert await fingerprint(db) == before


async def test_over_long_headers_and_request_lines_get_problem_json_with_the_security_headers(
    base_url: str, tally: Tally
) -> None:
    """aiohttp answers these itself before any middleware; they used to be plain text with its version."""
    async with checked_session() as session:
        answers = []
        for headers, path in (
            ({"X-Padding": "a" * 20_000}, "/jobs"),
            ({"Authorization": "Bearer " + "k" * 20_000}, "/jobs"),
            ({}, "/jobs?kind=" + "k" * 20_000),
        ):
            async with session.get(URL(base_url + path, encoded=True), headers=headers) as response:
                body = await response.read()
                answers.append((response.status, response.headers, body))
                tally.sent["headers"] += 1
                if response.status >= 500:
                    tally.server_errors["headers"] += 1
    for status, headers, body in answers:
        assert 400 <= status < 500 and headers["Content-Type"].startswith(PROBLEM), (status, body[:200])
        problem = orjson.loads(body)
        assert problem["status"] == status and problem["detail"]
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Server"] == "gleaner"


async def test_a_client_sending_nul_payloads_never_fails_another_clients_submissions(
    base_url: str, db: asyncpg.Connection, tally: Tally
) -> None:
    """Issue 11: while one client sent payloads with \\u0000, 94-103 of another's 600 valid submissions got 500
    (their rows shared one grouped insert)."""
    statuses: dict[str, Counter[int]] = {"poison": Counter(), "valid": Counter()}
    valid_ids: list[int] = []
    started = time.monotonic()

    async def poisoner(session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            body = {"kind": "noop", "payload": {"x": f"poison{NUL}{time.monotonic()}"}}
            async with session.post(f"{base_url}/jobs", json=body) as response:
                statuses["poison"][response.status] += 1

    async def submitter(session: aiohttp.ClientSession, numbers: range) -> None:
        for number in numbers:
            async with session.post(f"{base_url}/jobs", json={"kind": "noop", "payload": {"n": number}}) as response:
                statuses["valid"][response.status] += 1
                if response.status == 202:
                    valid_ids.append((await response.json())["id"])

    stop = asyncio.Event()
    headers = {"Authorization": f"Bearer {WRITE_KEY}"}
    async with checked_session(headers=headers) as session:
        poisoners = [asyncio.create_task(poisoner(session, stop)) for _ in range(8)]
        await asyncio.gather(*(submitter(session, range(i, 600, 16)) for i in range(16)))
        stop.set()
        await asyncio.gather(*poisoners)
    tally.sent["nul-poisoning"] += sum(statuses["poison"].values()) + 600
    server_errors = sum(n for counts in statuses.values() for code, n in counts.items() if code >= 500)
    if server_errors:
        tally.server_errors["nul-poisoning"] += server_errors
    assert statuses["valid"] == Counter({202: 600}), (statuses, time.monotonic() - started)
    assert set(statuses["poison"]) == {422} and statuses["poison"][422] > 50, statuses
    rows = await db.fetch("SELECT id, payload FROM jobs ORDER BY id")
    assert sorted(r["id"] for r in rows) == sorted(valid_ids)
    assert sorted(orjson.loads(r["payload"])["n"] for r in rows) == list(range(600))
