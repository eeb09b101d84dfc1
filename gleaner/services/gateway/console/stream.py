"""`/console/events`: the API's event stream for a signed-in browser, whose EventSource cannot send a bearer key.

The session cookie authenticates it; the filters, keep-alives, Last-Event-ID resumes and the dropping of a slow
client are those of `GET /api/v1/events`, served by the same code. Each stream ends after MAX_STREAM_S and the
browser reconnects (resuming by Last-Event-ID), so a revoked key's stream stops within that time.
"""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict

from gleaner.services.gateway import events_api
from gleaner.services.gateway.auth import READ
from gleaner.services.gateway.console.core import guarded, visitor_of
from gleaner.shared.errors import Problem

MAX_STREAM_S = 300.0
DURATION = "duration_s"


async def _stream(request: web.Request) -> web.StreamResponse:
    visitor = await visitor_of(request)
    if not visitor.principal.allows(READ):
        raise Problem(403, "Forbidden", f"your key lacks the `{READ}` scope this needs")
    query = MultiDict(request.query)
    query[DURATION] = str(MAX_STREAM_S)  # the browser's own value is replaced: the key is checked again at each
    return await events_api.stream_events(request.clone(rel_url=request.rel_url.with_query(query)))


stream = guarded(_stream)
