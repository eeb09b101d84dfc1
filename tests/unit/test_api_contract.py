"""The checker behind every test's HTTP session: it resolves the operation and names what does not conform."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.contract import Answer, Contract, ContractViolation

PROBLEM = {"$ref": "#/components/schemas/Problem"}
DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/jobs/{id}": {
            "get": {
                "responses": {
                    "200": {
                        "description": "the job",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}},
                    },
                    "404": {"$ref": "#/components/responses/NotFound"},
                }
            }
        },
        "/jobs/batch": {
            "post": {
                "responses": {
                    "202": {
                        "description": "accepted",
                        "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                }
            }
        },
        "/jobs/{id}/cancel": {"delete": {"responses": {"204": {"description": "gone"}}}},
    },
    "components": {
        "schemas": {
            "Job": {
                "type": "object",
                "required": ["id", "queue"],
                "additionalProperties": False,
                "properties": {"id": {"type": "integer"}, "queue": {"type": "string"}},
            },
            "Problem": {"type": "object", "required": ["status"], "properties": {"status": {"type": "integer"}}},
        },
        "responses": {"NotFound": {"description": "no", "content": {"application/problem+json": {"schema": PROBLEM}}}},
    },
}
PROBLEM_TYPE = "application/problem+json"
# a gleaner.Client or AsyncClient being built (not the word in prose, a string or an import)
GLEANER_CLIENT = re.compile(r"(?<![\w.\"'])(Async)?Client\(")
CHECKED = "transport=Checked"


def answer(
    method: str, path: str, status: int, body: Any = None, ctype: str = "application/json", **headers: str
) -> Answer:
    raw = orjson.dumps(body) if body is not None else b""
    return Answer(method, path, status, ctype if body is not None else "", headers, raw)


@pytest.fixture
def contract() -> Contract:
    return Contract(DOCUMENT)


def test_a_conforming_answer_passes(contract: Contract) -> None:
    contract.check(answer("GET", "/jobs/7", 200, {"id": 7, "queue": "default"}, "application/json; charset=utf-8"))
    contract.check(answer("GET", "/jobs/7", 404, {"status": 404}, PROBLEM_TYPE))
    contract.check(answer("DELETE", "/jobs/7/cancel", 204))


def test_an_undocumented_status_names_the_operation_and_the_documented_ones(contract: Contract) -> None:
    with pytest.raises(
        ContractViolation, match=r"status 500 is not documented for GET /jobs/\{id\} \(documented: 200, 404\)"
    ):
        contract.check(answer("GET", "/jobs/7", 500, {"status": 500}, PROBLEM_TYPE))


def test_a_schema_mismatch_names_the_member_and_the_schema(contract: Contract) -> None:
    with pytest.raises(ContractViolation) as raised:
        contract.check(answer("GET", "/jobs/7", 200, {"id": 7, "queue": None, "extra": 1}))
    message = str(raised.value)
    assert "does not match the 200 application/json schema of GET /jobs/{id}" in message
    assert "at $.queue: None is not of type 'string'" in message
    assert "'extra' was unexpected" in message


def test_a_problem_must_be_problem_json_and_a_body_must_be_json(contract: Contract) -> None:
    with pytest.raises(ContractViolation, match="content type 'application/json' is not one of"):
        contract.check(answer("GET", "/jobs/7", 404, {"status": 404}))
    with pytest.raises(ContractViolation, match="not JSON"):
        contract.check(Answer("GET", "/jobs/7", 200, "application/json", {}, b"<html>"))


def test_a_required_header_and_an_empty_body_are_checked(contract: Contract) -> None:
    with pytest.raises(ContractViolation, match=r"headers \['Location'\] are required"):
        contract.check(answer("POST", "/jobs/batch", 202, {}))
    contract.check(answer("POST", "/jobs/batch", 202, {}, Location="/api/v1/jobs/1"))
    with pytest.raises(ContractViolation, match="documented without a body"):
        contract.check(Answer("DELETE", "/jobs/7/cancel", 204, "", {}, b"x"))


def test_the_most_literal_template_wins_and_other_methods_must_be_405_problems(contract: Contract) -> None:
    contract.check(answer("GET", "/jobs/batch", 405, {"status": 405}, PROBLEM_TYPE))
    with pytest.raises(ContractViolation, match="no documented operation; expected a 405 problem"):
        contract.check(answer("GET", "/jobs/batch", 200, {"id": 1, "queue": "q"}))
    contract.check(answer("GET", "/nowhere", 404, {"status": 404}, PROBLEM_TYPE))
    with pytest.raises(ContractViolation, match="expected a 404 problem"):
        contract.check(answer("GET", "/nowhere", 200, {}))


def client_calls(text: str) -> list[str]:
    """Each `Client(...)` / `AsyncClient(...)` call in a source, up to its closing parenthesis."""
    calls = []
    for match in GLEANER_CLIENT.finditer(text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        calls.append(" ".join(text[match.start() : end + 1].split()))
    return calls


def test_tests_open_http_sessions_only_through_the_checked_client() -> None:
    """Every test's answers are checked: no test builds its own aiohttp session (tests/support/contract.py does),
    and every gleaner client a live test builds has a checking transport."""
    root = Path(__file__).resolve().parents[1]
    sources = {path: path.read_text() for path in root.rglob("*.py") if path != Path(__file__).resolve()}
    raw = [
        str(p.relative_to(root)) for p, text in sources.items() if "ClientSession(" in text and p.name != "contract.py"
    ]
    assert raw == [], f"use tests.support.contract.checked_session() (or Api) instead of aiohttp.ClientSession in {raw}"
    live = [p for p in sources if p.parent.name in ("integration", "e2e", "contract")]
    unchecked = [
        f"{p.relative_to(root)}: {call}" for p in live for call in client_calls(sources[p]) if CHECKED not in call
    ]
    assert unchecked == [], (
        "give gleaner clients transport=CheckedTransport() / CheckedAsyncTransport():\n" + "\n".join(unchecked)
    )
