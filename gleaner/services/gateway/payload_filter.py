"""The `payload` filter of GET /jobs: `payload={json object}` and `payload.<key>=<text>` into one containment
(pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.field_checks import InvalidJSON, NotJSON, load_json

PREFIX = "payload."
# a page filtered by payload looks at this many job ids at most (payloads are not indexed): a page may then hold
# fewer jobs than asked for, even none, with a `next_page_token` that goes on further back
SCAN_IDS = 5_000


def payload_containment(query: Mapping[str, str]) -> str | None:
    """The JSON object a job's payload must contain (`@>`), or None when the query has no payload filter.

    `payload.ticker=PETR4` asks for the string "PETR4"; `payload={"page": 2}` for any JSON values.
    """
    wanted: dict[str, Any] = {}
    raw = query.get("payload")
    if raw is not None:
        try:
            parsed = load_json(raw.encode())
        except NotJSON:
            parsed = None
        except InvalidJSON as exc:
            raise ValidationProblem([field_error(f"payload.{path}", message) for path, message in exc.errors]) from None
        if not isinstance(parsed, dict):
            raise ValidationProblem([field_error("payload", 'must be a JSON object, e.g. {"ticker": "PETR4"}')])
        wanted.update(parsed)
    for name, value in query.items():
        if name.startswith(PREFIX):
            if name == PREFIX:
                raise ValidationProblem([field_error(name, "needs a key: payload.<key>=<value>")])
            wanted[name[len(PREFIX) :]] = value
    return orjson.dumps(wanted, option=orjson.OPT_SORT_KEYS).decode() if wanted else None


def scan_floor(newest_id: int | None, window: int = SCAN_IDS) -> int | None:
    """The lowest id a payload-filtered page looks at, when its newest candidate is `newest_id` (None: none)."""
    return None if newest_id is None else max(1, newest_id - window + 1)


def next_after(last_id: int | None, more: bool, floor: int | None) -> int | None:
    """The id the next page starts below: the page's last when more rows matched, else the scan's floor while
    older ids are left to look at (None: no scan window); None on the last page."""
    if more:
        return last_id
    return floor if floor is not None and floor > 1 else None
