"""Pure gateway parts: page tokens, problem rendering, row views, auth helpers, event bodies, insert matching."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from aiohttp import web

from gleaner.services.gateway.api_keys import parse_scopes
from gleaner.services.gateway.auth import ADMIN, READ, WRITE, Principal, bearer_of, required_scope
from gleaner.services.gateway.job_store import ListFilters, NewJob, insert_args, list_query, match_inserted
from gleaner.services.gateway.job_views import (
    JOB_FIELDS,
    JOB_TIMES,
    job_view,
    message_letter,
    submitted_json,
    submitted_view,
    timestamp,
)
from gleaner.services.gateway.pagination import PageTokens, filter_hash
from gleaner.services.gateway.problems import from_http_exception, render
from gleaner.shared.config import Config
from gleaner.shared.errors import GleanerError, Problem, ValidationProblem, field_error
from gleaner.shared.submission import parse_one

TOKENS = PageTokens(b"k" * 32)


def test_a_page_token_round_trips_with_the_same_filters() -> None:
    token = TOKENS.encode(42, {"kind": "noop", "state": None})
    assert TOKENS.decode(token, {"kind": "noop"}) == 42


def forged(last: object, filters: dict[str, object]) -> str:
    """A token as anyone can build it from the visible format, without the key."""
    body = orjson.dumps({"last": last, "f": filter_hash(filters)})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "",
        "e30",
        "é.é",
        TOKENS.encode(1, {})[:-2] + "!!",
        forged(2**63, {}),
        forged(5, {}),
        forged(6, {}) + "." + TOKENS.encode(5, {}).split(".")[1],
        PageTokens(b"another key, another gateway").encode(5, {}),
    ],
)
def test_a_garbled_or_forged_page_token_is_a_422_naming_it(token: str) -> None:
    with pytest.raises(ValidationProblem) as caught:
        TOKENS.decode(token, {})
    assert caught.value.errors[0]["field"] == "page_token"


def test_a_page_token_from_other_filters_is_refused() -> None:
    with pytest.raises(ValidationProblem, match="page_token"):
        TOKENS.decode(TOKENS.encode(5, {"kind": "a"}), {"kind": "b"})


def test_a_validation_problem_renders_as_problem_json_with_field_errors() -> None:
    response = render(ValidationProblem([field_error("priority", "too high")]), "/api/v1/jobs", "rid")
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert response.headers["X-Request-Id"] == "rid"
    assert isinstance(response.body, bytes)
    body = orjson.loads(response.body)
    assert body["errors"] == [{"field": "priority", "message": "too high"}]
    assert (body["type"], body["status"], body["instance"], body["request_id"]) == (
        "about:blank",
        422,
        "/api/v1/jobs",
        "rid",
    )


def test_aiohttp_errors_become_problems() -> None:
    problem = from_http_exception(web.HTTPMethodNotAllowed("DELETE", ["GET", "POST"]))
    assert (problem.status, problem.headers["Allow"]) == (405, "GET, POST")
    assert from_http_exception(web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20)).status == 413
    assert isinstance(from_http_exception(web.HTTPNotFound()), Problem)


def test_timestamps_are_fixed_width_utc() -> None:
    local = datetime(2030, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp(local) == "2030-01-01T00:00:00.000000Z"
    assert timestamp(None) is None


def test_a_job_view_has_every_documented_field() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    row: dict[str, Any] = dict.fromkeys(JOB_FIELDS)
    row.update(id=1, created_at=now, payload={"a": 1})
    view = job_view(row)
    assert list(view) == list(JOB_FIELDS)
    assert view["created_at"] == "2030-01-01T00:00:00.000000Z" and view["payload"] == {"a": 1}


def test_every_timestamp_of_a_job_view_is_rendered_and_a_datetime_never_leaks_through() -> None:
    row: dict[str, Any] = dict.fromkeys(JOB_FIELDS)
    times = {name: datetime(2030, 1, 1, 0, 0, i, 5, tzinfo=UTC) for i, name in enumerate(JOB_TIMES)}
    row.update(times)
    view = job_view(row)
    assert {name: view[name] for name in JOB_TIMES} == {
        name: f"2030-01-01T00:00:0{i}.000005Z" for i, name in enumerate(JOB_TIMES)
    }
    assert not [name for name, value in view.items() if isinstance(value, datetime)]
    assert {name for name in JOB_FIELDS if name.endswith("_at")} == set(JOB_TIMES)


def test_a_poison_message_shows_text_when_it_can_and_base64_always() -> None:
    row = {
        "id": 3,
        "reason": "undecodable",
        "detail": "",
        "queue": "default",
        "job_id": None,
        "body": b"\xff\xfe",
        "headers": {},
        "created_at": None,
        "resolved_at": None,
        "resolution": None,
    }
    letter = message_letter(row)
    assert (letter["id"], letter["body"], letter["body_base64"]) == ("message-3", None, "//4=")
    assert message_letter({**row, "body": b"hello"})["body"] == "hello"


def test_scopes_follow_method_and_path() -> None:
    assert required_scope("GET", "/api/v1/dead-letters") == READ
    assert required_scope("POST", "/api/v1/jobs") == WRITE
    assert required_scope("DELETE", "/api/v1/dead-letters/job-1") == ADMIN
    assert Principal("a", frozenset({ADMIN})).allows(WRITE)
    assert not Principal("r", frozenset({READ})).allows(WRITE)


def test_bearer_tokens_and_scope_lists_are_parsed_strictly() -> None:
    assert bearer_of("Bearer abc") == "abc"
    assert bearer_of("bearer  abc ") == "abc"
    assert bearer_of("Basic abc") is None and bearer_of(None) is None and bearer_of("Bearer ") is None
    assert parse_scopes("jobs:read, admin") == ["jobs:read", "admin"]
    with pytest.raises(GleanerError):
        parse_scopes("jobs:read,root")


def test_list_queries_only_use_the_filters_given() -> None:
    sql, args = list_query(ListFilters(kind="noop"), after_id=10, limit=51)
    assert "kind = $1" in sql and "id < $2" in sql and "LIMIT $3" in sql
    assert args == ["noop", 10, 51]
    sql, args = list_query(ListFilters(), None, 5)
    assert "SELECT id FROM jobs  ORDER BY" in sql and args == [5]
    sql, args = list_query(ListFilters(payload='{"a": 1}'), after_id=None, limit=51, floor_id=7)
    assert "payload @> $1::text::jsonb" in sql and "id >= $2" in sql and args == ['{"a": 1}', 7, 51]


def test_inserted_rows_are_matched_to_inputs_and_conflicts_left_empty() -> None:
    config = Config()
    items = [
        NewJob(parse_one({"kind": "a"}, config), None),
        NewJob(parse_one({"kind": "a", "dedupe_key": "x"}, config), None),
        NewJob(parse_one({"kind": "b", "dedupe_key": "y"}, config), None),
    ]
    rows = [{"id": 9, "kind": "b", "dedupe_key": "y"}, {"id": 7, "kind": "a", "dedupe_key": None}]
    matched = match_inserted(items, rows)  # type: ignore[arg-type]
    assert [r["id"] if r else None for r in matched] == [7, None, 9]


def test_a_new_job_s_view_names_every_field_of_a_job_s_view_in_its_order() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    row = {"id": 1, "state": "queued", "attempt": 0, "schedule_id": None, "depends_on": None, "blocked_on": 0}
    view = submitted_view(
        parse_one({"kind": "noop"}, Config()), row | {"created_at": now, "run_at": now, "updated_at": now}
    )
    assert tuple(view) == JOB_FIELDS


def test_an_insert_sends_a_column_no_item_sets_as_null_one_all_set_alike_as_one_value_and_the_others_whole() -> None:
    config = Config()
    plain = NewJob(parse_one({"kind": "noop", "payload": {"i": 1}}, config), None)
    keyed = NewJob(parse_one({"kind": "noop", "dedupe_key": "k", "site": "s", "payload": {"i": 1}}, config), "r")
    columns = insert_args([plain, keyed])
    kinds, payloads, sites, keys, request_ids, soft_timeouts = (columns[i] for i in (0, 3, 10, 11, 12, 13))
    assert (kinds, payloads, sites, keys, request_ids, soft_timeouts) == (
        ["noop"],
        [{"i": 1}, {"i": 1}],  # always one a row: the statement makes a row per payload
        [None, "s"],
        [None, "k"],
        [None, "r"],
        None,
    )
    assert insert_args([plain])[10:] == [None, None, None, None]
    assert insert_args([keyed, keyed])[10:] == [["s"], ["k"], ["r"], None]


def test_a_batch_answer_is_written_as_the_views_of_its_jobs_would_be() -> None:
    config = Config()
    now, later = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 2, 0, 5, tzinfo=UTC)
    submissions: list[dict[str, Any]] = [
        {"kind": "noop", "payload": {"i": 1}},
        {"kind": "noop", "payload": {"b": [1, 2.5, None], "a": "x\\"}},
        {"kind": "noop", "payload": {"i": 1}, "priority": 9, "site": "s", "dedupe_key": ',"payload":null,'},
        {"kind": "noop"},
        {"kind": "noop", "delay_s": 300, "timeout_s": 30, "soft_timeout_s": 10},
    ]
    specs = [parse_one(data, config) for data in submissions]
    base = {"attempt": 0, "schedule_id": None, "depends_on": None, "blocked_on": 0, "created_at": now}
    rows = [base | {"id": 10 + n, "state": "queued", "run_at": now, "updated_at": now} for n in range(4)]
    rows.append(base | {"id": 20, "state": "scheduled", "run_at": later, "updated_at": now})
    rows[3] = rows[3] | {"depends_on": [1], "blocked_on": 1}  # a linked row on its own
    written = orjson.dumps(submitted_json(specs, rows))
    assert written == orjson.dumps([submitted_view(spec, row) for spec, row in zip(specs, rows, strict=True)])
