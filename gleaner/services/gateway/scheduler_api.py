"""Handlers for /scheduler: status (leader, pause, last tick, backlog, lag), global pause and resume, run now."""

from __future__ import annotations

from aiohttp import web

from gleaner.services.gateway.context import Gateway, gateway_of
from gleaner.services.gateway.job_views import json_response, timestamp
from gleaner.services.gateway.schedule_views import scheduler_view
from gleaner.shared.scheduling import scheduler_settings, scheduler_status
from gleaner.shared.scheduling.fire_now import fire_all


async def _status(gw: Gateway, **extra: object) -> web.Response:
    return json_response(scheduler_view(await scheduler_status.status(gw.pool)) | extra)


async def get_scheduler(request: web.Request) -> web.Response:
    return await _status(gateway_of(request))


async def pause_scheduler(request: web.Request) -> web.Response:
    """No schedule fires until resumed (manual triggers and `run` still do)."""
    gw = gateway_of(request)
    await scheduler_status.set_paused(gw.pool, True)
    return await _status(gw)


async def resume_scheduler(request: web.Request) -> web.Response:
    """Slots missed while paused follow each schedule's misfire policy, fired by the leader at once."""
    gw = gateway_of(request)
    await scheduler_status.set_paused(gw.pool, False)
    return await _status(gw)


async def run_scheduler(request: web.Request) -> web.Response:
    """Fire what is due now, from this request, even while paused or with no leader; answers how many jobs fired."""
    gw = gateway_of(request)
    fired, _ = await fire_all(gw.pool, gw.config, gw.broker, gw.metrics)
    return await _status(gw, fired=fired)


async def get_scheduler_config(request: web.Request) -> web.Response:
    """The effective settings of the scheduler that leads (or led last), else this gateway's own."""
    gw = gateway_of(request)
    row = await gw.pool.fetchrow(scheduler_status.SETTINGS)
    if row is None or row["settings"] is None:
        settings = scheduler_settings.effective(gw.config)
        return json_response(scheduler_settings.view(settings, recorded_by=None, recorded_at=None))
    recorded_at = timestamp(row["settings_at"])
    return json_response(
        scheduler_settings.view(row["settings"], recorded_by=row["settings_by"], recorded_at=recorded_at)
    )
