"""A kind's payload JSON Schema, compiled once and run as a payload check: (member path, message) per problem.

The gateway checks submissions with it and the worker checks again before a handler runs (a payload that
slipped past, e.g. an old schedule, fails the job permanently instead of running). At the gateway `"format": "uri"`
members go through the fetch client's own URL guard, so a refused URL is a 422 at submit rather than a failed job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from gleaner.shared.field_checks import Invalid
from gleaner.shared.kind_rules import PayloadCheck
from gleaner.shared.urlguard import Policy, url_field

URL_FORMAT = "uri"
MAX_PROBLEMS = 100


def format_checker(policy: Policy | None) -> FormatChecker:
    """The standard formats, with `uri` meaning "a URL the fetch client may reach under `policy`" (None: any
    string; the fetch client refuses the URL itself when it is fetched)."""
    checker = FormatChecker()
    url = url_field(policy) if policy is not None else None

    def fetchable(value: object) -> bool:
        if url is not None and isinstance(value, str):
            url(value)
        return True

    checker.checks(URL_FORMAT, raises=Invalid)(fetchable)
    return checker


class SchemaChecks:
    """Compiled payload checks by schema text: recompiling only when a kind's schema changed."""

    def __init__(self, policy: Policy | None) -> None:
        self._formats = format_checker(policy)
        self._compiled: dict[bytes, PayloadCheck] = {}

    def check_of(self, schema: Mapping[str, Any]) -> PayloadCheck:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        check = self._compiled.get(key)
        if check is None:
            validator = Draft202012Validator(schema, format_checker=self._formats)
            check = self._compiled[key] = _check(validator)
        return check

    def forget_except(self, schemas: Iterable[object]) -> None:
        """Drop compiled checks no registered kind uses any more."""
        keep = {orjson.dumps(s, option=orjson.OPT_SORT_KEYS) for s in schemas}
        self._compiled = {key: check for key, check in self._compiled.items() if key in keep}


def _check(validator: Draft202012Validator) -> PayloadCheck:
    def check(payload: Any) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for error in validator.iter_errors(payload):
            problems.extend(problem for problem in _problems(error) if problem not in problems)
            if len(problems) >= MAX_PROBLEMS:
                break
        return sorted(problems[:MAX_PROBLEMS])

    return check


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    """An error as (member path, message); a missing or unexpected member is named itself."""
    where = member_path(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [name for name in required if name not in instance]
        return [(_join(where, name), "is required") for name in missing]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        return [(_join(where, name), "unknown field") for name in sorted(set(instance) - set(known))]
    if error.validator == "format" and isinstance(error.cause, Invalid):
        return [(where, str(error.cause))]
    return [(where, error.message)]


def member_path(path: deque[str | int] | Iterable[str | int]) -> str:
    """`a.b[2]` from a JSON Schema path."""
    out = ""
    for part in path:
        out = f"{out}[{part}]" if isinstance(part, int) else _join(out, part)
    return out


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
