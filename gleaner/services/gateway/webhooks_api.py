"""`/webhooks` (admin): create, list, delete. The secret is written, never read back."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from gleaner.services.gateway.bodies import id_param, read_json
from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.event_filters import NAMES, parse_filter
from gleaner.services.gateway.job_views import json_response
from gleaner.shared.errors import Problem, ValidationProblem, field_error
from gleaner.shared.field_checks import Invalid, text
from gleaner.shared.urlguard import Policy, url_field

API = "/api/v1"
FIELDS = frozenset({"url", "filter", "secret", "description"})
SECRET = text(re.compile(r"[\x21-\x7e]{16,200}"), "16 to 200 printable ASCII characters without spaces")
DESCRIPTION = text(re.compile(r"[^\x00]{0,200}", re.S), "at most 200 characters")
COLUMNS = "id, url, filter, description, created_at"
CREATE = f"INSERT INTO webhooks (url, filter, secret, description) VALUES ($1, $2::jsonb, $3, $4) RETURNING {COLUMNS}"
LIST = f"SELECT {COLUMNS} FROM webhooks ORDER BY id"
DELETE = "DELETE FROM webhooks WHERE id = $1 RETURNING id"


def webhook_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "filter": orjson.loads(row["filter"]),
        "description": row["description"],
        "created_at": row["created_at"],
    }


def parse_webhook(data: Any, policy: Policy) -> tuple[str, dict[str, Any], str, str | None]:
    """(url, filter, secret, description), or a 422 naming every bad field."""
    if not isinstance(data, dict):
        raise ValidationProblem([field_error("body", "must be a JSON object")])
    errors = [field_error(name, "unknown field") for name in sorted(set(data) - FIELDS)]
    checked: dict[str, Any] = {}
    for name, convert in (("url", url_field(policy)), ("secret", SECRET), ("description", DESCRIPTION)):
        if data.get(name) is None:
            if name != "description":
                errors.append(field_error(name, "is required"))
            continue
        try:
            checked[name] = convert(data[name])
        except Invalid as exc:
            errors.append(field_error(name, str(exc)))
    wanted = data.get("filter", {})
    if isinstance(wanted, dict) and all(isinstance(v, list) for v in wanted.values()):
        errors += [field_error(f"filter.{name}", "unknown filter") for name in sorted(set(wanted) - set(NAMES))]
        parsed, filter_errors = parse_filter(wanted, "filter.")
        errors += filter_errors
    else:
        errors.append(field_error("filter", 'must be an object of lists, e.g. {"type": ["job.failed"]}'))
    if errors:
        raise ValidationProblem(errors)
    return checked["url"], parsed.as_dict(), checked["secret"], checked.get("description")


async def create_webhook(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    _, data = await read_json(request)
    url, wanted, secret, description = parse_webhook(data, Policy.configured(gw.config.fetch_allow_private))
    row = await gw.pool.fetchrow(CREATE, url, orjson.dumps(wanted).decode(), secret, description)
    assert row is not None, "INSERT … RETURNING returns the row"
    await gw.webhooks.refresh()
    await gw.events.settle()  # this replica hears the events the webhook wants from now on
    return json_response(webhook_view(row), 201, headers={"Location": f"{API}/webhooks/{row['id']}"})


async def list_webhooks(request: web.Request) -> web.Response:
    rows = await gateway_of(request).pool.fetch(LIST)
    return json_response({"webhooks": [webhook_view(r) for r in rows]})


async def delete_webhook(request: web.Request) -> web.Response:
    gw = gateway_of(request)
    webhook_id = id_param(request, "webhook")
    if await gw.pool.fetchval(DELETE, webhook_id) is None:
        raise Problem(404, "Not Found", f"webhook {webhook_id} does not exist")
    await gw.webhooks.refresh()
    return web.Response(status=204)
