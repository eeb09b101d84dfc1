"""What every console request shares: the signed-in visitor, the API calls made on their behalf, rendering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
import orjson
from aiohttp import web

from gleaner.services.gateway.auth import ADMIN, WRITE, KeyCache, Principal
from gleaner.services.gateway.console.api_client import Answer, ApiClient
from gleaner.services.gateway.console.session import COOKIE, COOKIE_PATH, Sealer, Session
from gleaner.shared.errors import Problem

HOME = "/console/"
SIGN_IN = "/console/sign-in"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# what an action that went through shows on the page it returns to (`?done=<code>`, `&n=<count>`)
NOTICES = {
    "cancelled": "Cancelled (a running job stops at its next await).",
    "retried": "Queued to run again.",
    "requeued": "Requeued: the job runs again.",
    "bulk_requeued": "Requeued {n} failed jobs.",
    "resolved": "Resolved: the dead letter is off the list.",
    "paused": "Paused.",
    "resumed": "Resumed.",
    "triggered": "Triggered: this is the job it made.",
    "saved": "Saved.",
}


@dataclass(slots=True)
class Console:
    """The console's parts, under one app key."""

    sealer: Sealer
    api: ApiClient
    keys: KeyCache
    templates: jinja2.Environment


CONSOLE_KEY = web.AppKey("console", Console)


class SignedOut(Exception):
    """No session, an expired or forged one, or its key was revoked: back to the sign-in page."""


@dataclass(frozen=True, slots=True)
class Visitor:
    request: web.Request
    session: Session
    principal: Principal

    @property
    def console(self) -> Console:
        return self.request.app[CONSOLE_KEY]

    @property
    def can_write(self) -> bool:
        return self.principal.allows(WRITE)

    @property
    def can_admin(self) -> bool:
        return self.principal.allows(ADMIN)

    async def call(self, method: str, path: str, params: Mapping[str, str] | None = None, body: Any = None) -> Answer:
        answer = await self.console.api.call(self.request, self.session.key, method, path, params=params, body=body)
        if answer.status == 401:
            raise SignedOut
        return answer

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The API's answer, or its error as the console's (the same status: a bad filter stays a 4xx)."""
        answer = await self.call("GET", path, params)
        if not answer.ok:
            raise Problem(answer.status, "The API refused", answer.detail)
        return answer.data

    async def get_all(self, *calls: tuple[str, Mapping[str, str] | None]) -> list[Any]:
        return list(await asyncio.gather(*(self.get(path, params) for path, params in calls)))


async def visitor_of(request: web.Request) -> Visitor:
    """The signed-in visitor; the key is checked again on every request, so revoking it ends the session."""
    console = request.app[CONSOLE_KEY]
    session = console.sealer.open(request.cookies.get(COOKIE))
    if session is None:
        raise SignedOut
    principal = await console.keys.principal(session.key)
    if principal is None:
        raise SignedOut
    return Visitor(request, session, principal)


def render(request: web.Request, template: str, context: Mapping[str, Any], status: int = 200) -> web.Response:
    html = request.app[CONSOLE_KEY].templates.get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def notice_of(query: Mapping[str, str]) -> str | None:
    template = NOTICES.get(query.get("done", ""))
    count = query.get("n", "0")
    return template.format(n=int(count) if count.isdigit() and len(count) < 10 else 0) if template else None


def page_context(visitor: Visitor, **values: Any) -> dict[str, Any]:
    return {
        "notice": notice_of(visitor.request.query),
        "csrf": visitor.session.csrf,
        "can_write": visitor.can_write,
        "can_admin": visitor.can_admin,
        "who": visitor.principal.name,
        "path": visitor.request.path,
        **values,
    }


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def to_sign_in(request: web.Request) -> web.Response:
    back = request.path_qs if request.method == "GET" and request.path.startswith(HOME) else HOME
    response = see_other(f"{SIGN_IN}?next={quote(back, safe='/')}")
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


def guarded(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Handler:
    """A console handler whose refusals are HTML pages (with the status the API or the check chose)."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except SignedOut:
            return to_sign_in(request)
        except Problem as problem:
            detail = problem.detail or problem.title
            if problem.errors:
                fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in problem.errors)
                detail = f"{detail} ({fields})"
            context = {"status": problem.status, "title": problem.title, "detail": detail, "back": HOME}
            return render(request, "error.html", context, problem.status)

    return run


def pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gleaner.services.gateway.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = pretty
    return env
