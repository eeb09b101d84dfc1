"""The console's URL table (everything under /console/), and the redirects from / and /ui."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gleaner.services.gateway.console import actions, pages, stream
from gleaner.services.gateway.console.core import HOME, see_other

C = "/console"
JOB = "{id:[0-9]{1,19}}"
LETTER = "{id:(?:job|message)-[0-9]{1,19}}"
SCHEDULE = "{id:[0-9]{1,19}}"
NAME = "{name:[A-Za-z0-9_.:-]{1,100}}"
STATIC = Path(__file__).with_name("static")


async def home(_request: web.Request) -> web.Response:
    return see_other(HOME)


def add_console_routes(app: web.Application) -> None:
    r = app.router
    for path in ("/", "/ui", "/ui/", C):
        r.add_get(path, home, allow_head=False)
    r.add_static(f"{C}/static", STATIC, append_version=False)
    r.add_get(f"{C}/sign-in", actions.sign_in_page, allow_head=False)
    r.add_post(f"{C}/sign-in", actions.sign_in)
    r.add_post(f"{C}/sign-out", actions.sign_out)
    r.add_get(f"{C}/events", stream.stream, allow_head=False)
    gets = {
        f"{C}/": "overview",
        f"{C}/jobs": "jobs",
        f"{C}/jobs/{JOB}": "job",
        f"{C}/dead-letters": "dead_letters",
        f"{C}/schedules": "schedules",
        f"{C}/schedules/{SCHEDULE}": "schedule",
        f"{C}/sites": "sites",
        f"{C}/sites/{NAME}": "site",
        f"{C}/queues": "queues",
        f"{C}/workers": "workers",
        f"{C}/kinds": "kinds",
    }
    for path, name in gets.items():
        r.add_get(path, pages.page(name), allow_head=False)
    lives = {
        f"{C}/live/overview": "overview",
        f"{C}/live/jobs": "jobs",
        f"{C}/live/jobs/{JOB}": "job",
        f"{C}/live/sites": "sites",
        f"{C}/live/workers": "workers",
    }
    for path, name in lives.items():
        r.add_get(path, pages.page(name, live=True), allow_head=False)
    posts = {
        f"{C}/jobs/{JOB}/cancel": "cancel",
        f"{C}/jobs/{JOB}/retry": "retry",
        f"{C}/dead-letters/requeue": "bulk_requeue",
        f"{C}/dead-letters/{LETTER}/requeue": "requeue",
        f"{C}/dead-letters/{LETTER}/resolve": "resolve",
        f"{C}/schedules/{SCHEDULE}/pause": "pause_schedule",
        f"{C}/schedules/{SCHEDULE}/resume": "resume_schedule",
        f"{C}/schedules/{SCHEDULE}/trigger": "trigger_schedule",
        f"{C}/schedules/{SCHEDULE}/edit": "edit_schedule",
        f"{C}/sites/{NAME}/edit": "edit_site",
        f"{C}/queues/{NAME}/pause": "pause_queue",
        f"{C}/queues/{NAME}/resume": "resume_queue",
    }
    for path, name in posts.items():
        r.add_post(path, actions.action(name))
