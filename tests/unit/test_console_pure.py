"""The console's pure parts: sealed sessions, parameter checks and the per-minute chart."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from gleaner.services.gateway.console import forms
from gleaner.services.gateway.console.actions import browser_scheme, same_origin
from gleaner.services.gateway.console.charts import HEIGHT, MINUTES, per_minute
from gleaner.services.gateway.console.session import Sealer
from gleaner.shared.errors import Problem, ValidationProblem


def test_a_sealed_session_opens_with_the_same_secret_and_hides_the_key() -> None:
    sealer = Sealer("s" * 32, 60)
    token, session = sealer.seal("glk_secret-key")
    assert "glk_secret-key" not in token
    assert Sealer("s" * 32, 60).open(token) == session
    assert session.csrf_matches(session.csrf) and not session.csrf_matches("other") and not session.csrf_matches(None)


@pytest.mark.parametrize("token", [None, "", "garbage", "x" * 5000, "gAAAA\u00e9"])
def test_a_missing_forged_or_oversized_cookie_opens_no_session(token: str | None) -> None:
    assert Sealer("s" * 32, 60).open(token) is None


def test_a_session_sealed_by_another_secret_or_process_does_not_open() -> None:
    token, _ = Sealer("a" * 32, 60).seal("key")
    assert Sealer("b" * 32, 60).open(token) is None
    assert Sealer(None, 60).open(Sealer(None, 60).seal("key")[0]) is None


def test_a_session_older_than_its_lifetime_is_refused() -> None:
    sealer = Sealer("s" * 32, 60)
    sealed_now = sealer._fernet.encrypt_at_time(b'{"k": "key", "c": "c"}', int(time.time()))
    sealed_before = sealer._fernet.encrypt_at_time(b'{"k": "key", "c": "c"}', int(time.time()) - 120)
    assert sealer.open(sealed_now.decode()) is not None
    assert sealer.open(sealed_before.decode()) is None


def test_a_sealed_document_that_is_not_a_session_opens_none() -> None:
    sealer = Sealer("s" * 32, 60)
    for body in (b"[]", b'{"k": 1, "c": "x"}', b"not json"):
        assert sealer.open(sealer._fernet.encrypt(body).decode()) is None


def test_job_filters_pass_the_known_ones_and_payload_pairs_and_name_every_bad_one() -> None:
    params = {"state": "failed", "kind": "fetch", "page_size": "20", "payload.url": "x", "other": "ignored", "site": ""}
    assert forms.job_filters(params) == {"state": "failed", "kind": "fetch", "page_size": "20", "payload.url": "x"}
    with pytest.raises(ValidationProblem) as raised:
        forms.job_filters({"state": "exploded", "page_size": "0", "kind": "k" * 201})
    assert {e["field"] for e in raised.value.errors} == {"state", "page_size", "kind"}


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/console/../api/v1/jobs", "/elsewhere", "/console/\\x"]
)
def test_a_sign_in_sends_the_browser_back_only_to_a_console_page(target: str) -> None:
    with pytest.raises(ValidationProblem):
        forms.read({"next": target}, forms.NEXT)


def test_an_edited_definition_must_be_a_json_object() -> None:
    assert forms.read({"definition": '{"burst": 2}'}, forms.EDIT) == {"definition": {"burst": 2}}
    for raw in ("[1]", "{not json", '"text"'):
        with pytest.raises(ValidationProblem):
            forms.read({"definition": raw}, forms.EDIT)


def test_the_chart_stacks_each_minutes_outcomes_scaled_to_the_busiest_minute() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    rows = [
        (now, "succeeded", 30),
        (now, "failed", 10),
        (now - timedelta(minutes=59), "succeeded", 20),
        (now - timedelta(minutes=60), "succeeded", 999),  # before the window
        (now, "running", 5),  # not an outcome
    ]
    chart = per_minute(now, rows)
    assert chart.peak == 40 and chart.totals == {"succeeded": 50, "partial": 0, "failed": 10, "cancelled": 0}
    last = [bar for bar in chart.bars if bar.x == (MINUTES - 1) * 10]
    assert [(bar.outcome, bar.height) for bar in last] == [
        ("succeeded", HEIGHT * 30 / 40),
        ("failed", HEIGHT * 10 / 40),
    ]
    assert last[1].y == 0 and last[0].y == HEIGHT - last[0].height
    assert per_minute(now, []).bars == []


def test_no_template_holds_inline_script_or_event_handler_attributes() -> None:
    """The Content-Security-Policy allows scripts from files only: an inline one would be blocked, so none exists."""
    folder = Path(forms.__file__).with_name("templates")
    for template in folder.glob("*.html"):
        text = template.read_text()
        assert re.search(r"<script(?![^>]*\bsrc=)", text) is None, template.name
        assert re.search(r"\son[a-z]+\s*=", text) is None, template.name
        assert re.search(r"\sstyle\s*=", text) is None, template.name


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),
        ({"Origin": "http://console.example"}, True),
        ({"Origin": "https://console.example", "X-Forwarded-Proto": "https"}, True),
        ({"Origin": "https://console.example"}, False),
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "http://console.example:8443"}, False),
        ({"Origin": "null"}, False),
    ],
)
def test_a_console_form_is_accepted_only_from_the_consoles_own_origin(headers: dict[str, str], allowed: bool) -> None:
    request = make_mocked_request("POST", "/console/sign-out", headers={"Host": "console.example", **headers})
    if allowed:
        same_origin(request)
    else:
        with pytest.raises(Problem) as refused:
            same_origin(request)
        assert refused.value.status == 403


def test_the_scheme_behind_a_tls_ending_proxy_is_the_forwarded_one() -> None:
    assert browser_scheme(make_mocked_request("GET", "/", headers={"X-Forwarded-Proto": "https, http"})) == "https"
    assert browser_scheme(make_mocked_request("GET", "/", headers={"X-Forwarded-Proto": "gopher"})) == "http"
    assert browser_scheme(make_mocked_request("GET", "/")) == "http"
