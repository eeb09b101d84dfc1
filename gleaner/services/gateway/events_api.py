"""`GET /events`: the job and schedule events of this replica's hub as Server-Sent Events.

Resume policy: each event's `id` names this replica and its place in the replica's history (the last 5
minutes, at most 16 MiB of batches). A client reconnecting to the same replica with `Last-Event-ID` gets what it
missed; any other reconnect starts with a `resync` event, and the client catches up from the database with
`GET /jobs?updated_after=<the last event's at>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from aiohttp import web

from gleaner.services.gateway.bodies import query_value
from gleaner.services.gateway.context import gateway_of
from gleaner.services.gateway.event_filters import NAMES, parse_filter
from gleaner.services.gateway.event_hub import ALL_ROUTES, CLOSING, DROPPED, Subscriber
from gleaner.shared import events
from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.field_checks import query_number

MAX_FRAMES_PER_WRITE = 200
MAX_DURATION_S = 86_400.0
KNOWN = frozenset({*NAMES, "duration_s"})
LAST_ID = re.compile(r"[\x20-\x7e]{0,200}")
RECONNECT_MS = 2000
ENDINGS = {
    events.DROPPED: "this client fell too far behind; reconnect",
    events.CLOSING: "this gateway is stopping; reconnect",
}
HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def stream_events(request: web.Request) -> web.StreamResponse:
    gw = gateway_of(request)
    duration_s = query_value(request, "duration_s", query_number(0, MAX_DURATION_S, exclusive_low=True))
    wanted, errors = parse_filter({name: request.query.getall(name, []) for name in NAMES})
    errors += [field_error(name, "unknown parameter") for name in sorted(set(request.query) - KNOWN)]
    last_id = request.headers.get("Last-Event-ID")
    if last_id is not None and LAST_ID.fullmatch(last_id) is None:
        errors.append(field_error("Last-Event-ID", "an event id as this API sent it"))
    if errors:
        raise ValidationProblem(errors)
    subscriber = Subscriber(wanted)
    await gw.events.listen(ALL_ROUTES)  # before the stream opens: what its client does next is heard
    resumed = gw.events.subscribe(subscriber, last_id)
    gw.metrics.event_streams.inc()
    try:
        response = web.StreamResponse(headers=HEADERS)
        await response.prepare(request)
        await response.write(b"retry: %d\n\n" % RECONNECT_MS)
        if not resumed:
            await response.write(
                events.stream_notice(
                    events.RESYNC, "events since Last-Event-ID are gone: read GET /jobs?updated_after="
                )
            )
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(duration_s):
                await _pump(subscriber, response, gw.config.events_keepalive_s)
    finally:
        gw.events.unsubscribe(subscriber)
        gw.metrics.event_streams.dec()
        if subscriber.ended is DROPPED:
            gw.metrics.event_streams_dropped.inc()
    return response


async def _pump(subscriber: Subscriber, response: web.StreamResponse, keepalive_s: float) -> None:
    """Write frames as they come, a comment after `keepalive_s` of silence; end when the hub drops the client."""
    while True:
        try:
            frames = [await asyncio.wait_for(subscriber.queue.get(), keepalive_s)]
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        while len(frames) < MAX_FRAMES_PER_WRITE and not subscriber.queue.empty():
            frames.append(subscriber.queue.get_nowait())
        if frames[-1] is DROPPED or frames[-1] is CLOSING:
            ending = frames[-1].event["type"]
            await response.write(events.stream_notice(ending, ENDINGS[ending]))
            return
        await response.write(b"".join(events.stream_frame(f.id, f.event) for f in frames))
