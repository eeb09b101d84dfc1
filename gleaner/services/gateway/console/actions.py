"""The console's forms: sign in and out, and every action, each a POST that the API carries out.

Every action checks, before the API is asked: a same-origin request, the session's CSRF token, and the scope the
API route needs (so a `jobs:read` key is refused with 403 here too, not only by the API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gleaner.services.gateway.auth import required_scope
from gleaner.services.gateway.console import forms
from gleaner.services.gateway.console.api_client import API
from gleaner.services.gateway.console.core import (
    CONSOLE_KEY,
    HOME,
    SIGN_IN,
    guarded,
    render,
    see_other,
    visitor_of,
)
from gleaner.services.gateway.console.session import COOKIE, COOKIE_PATH
from gleaner.shared.errors import Problem

Back = Callable[[Mapping[str, str], Any], str]
Body = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Action:
    """POST `api_path` (formatted with the route's match) with a body built from the checked form fields."""

    method: str
    api_path: str
    back: Back
    fields: Mapping[str, forms.Check] = field(default_factory=dict)
    body: Body = lambda values: values or None
    done: str = ""


def to(path: str) -> Back:
    return lambda match, _data: path.format(**match)


def to_job(_match: Mapping[str, str], data: Any) -> str:
    return f"/console/jobs/{int(data['id'])}"


ACTIONS: dict[str, Action] = {
    "cancel": Action("POST", "/jobs/{id}/cancel", to("/console/jobs/{id}"), done="cancelled"),
    "retry": Action("POST", "/jobs/{id}/retry", to("/console/jobs/{id}"), done="retried"),
    "requeue": Action("POST", "/dead-letters/{id}/requeue", to_job, done="requeued"),
    "bulk_requeue": Action(
        "POST", "/dead-letters/requeue", to("/console/dead-letters"), forms.BULK_REQUEUE, done="bulk_requeued"
    ),
    "resolve": Action("POST", "/dead-letters/{id}/resolve", to("/console/dead-letters"), forms.NOTE, done="resolved"),
    "pause_schedule": Action("POST", "/schedules/{id}/pause", to("/console/schedules"), done="paused"),
    "resume_schedule": Action("POST", "/schedules/{id}/resume", to("/console/schedules"), done="resumed"),
    "trigger_schedule": Action("POST", "/schedules/{id}/trigger", to_job, done="triggered"),
    "edit_schedule": Action(
        "PATCH",
        "/schedules/{id}",
        to("/console/schedules/{id}"),
        forms.EDIT,
        lambda v: v.get("definition", {}),
        "saved",
    ),
    "edit_site": Action(
        "PUT", "/sites/{name}", to("/console/sites/{name}"), forms.EDIT, lambda v: v.get("definition", {}), "saved"
    ),
    "pause_queue": Action("POST", "/queues/{name}/pause", to("/console/queues"), forms.REASON, done="paused"),
    "resume_queue": Action("POST", "/queues/{name}/resume", to("/console/queues"), done="resumed"),
}


def with_notice(path: str, done: str, data: Any) -> str:
    """The page to go back to, told what was done (a code it shows from a closed set, never text from the URL)."""
    count = data.get("requeued") if isinstance(data, dict) else None
    extra = f"&n={int(count)}" if isinstance(count, int) else ""
    return f"{path}{'&' if '?' in path else '?'}done={done}{extra}"


def browser_scheme(request: web.Request) -> str:
    """The scheme the browser used: behind a proxy that ends TLS, the one its X-Forwarded-Proto names. Trusting it
    is safe here: it only marks the cookie Secure and names the origin a form may come from, and a cross-site
    form cannot set headers."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return forwarded if forwarded in ("http", "https") else request.scheme


def same_origin(request: web.Request) -> None:
    """Browsers send Origin with every POST: one naming another site is a cross-site request, refused."""
    origin = request.headers.get("Origin")
    allowed = {f"{scheme}://{request.host}" for scheme in (request.scheme, browser_scheme(request))}
    if origin is not None and origin not in allowed:
        raise Problem(403, "Forbidden", "a console form must be sent from the console itself")


async def form_of(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {name: value for name, value in posted.items() if isinstance(value, str)}


def action(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    spec = ACTIONS[name]

    async def act(request: web.Request) -> web.StreamResponse:
        visitor = await visitor_of(request)
        same_origin(request)
        form = await form_of(request)
        if not visitor.session.csrf_matches(form.get("csrf")):
            raise Problem(403, "Forbidden", "the form's CSRF token is missing or wrong: reload the page and try again")
        api_path = spec.api_path.format(**request.match_info)
        scope = required_scope(spec.method, API + api_path)
        if not visitor.principal.allows(scope):
            raise Problem(403, "Forbidden", f"your key lacks the `{scope}` scope this needs")
        answer = await visitor.call(spec.method, api_path, body=spec.body(forms.read(form, spec.fields)))
        if not answer.ok:
            raise Problem(answer.status, "The API refused", answer.detail)
        return see_other(with_notice(spec.back(request.match_info, answer.data), spec.done, answer.data))

    return guarded(act)


async def _sign_in_page(request: web.Request) -> web.StreamResponse:
    values = forms.read(request.query, forms.NEXT)
    return render(request, "sign_in.html", {"next": values.get("next", HOME), "error": None})


async def _sign_in(request: web.Request) -> web.StreamResponse:
    """A key the gateway accepts starts a session; the cookie is HttpOnly, SameSite=Strict, Secure over HTTPS."""
    same_origin(request)
    values = forms.read(await form_of(request), forms.SIGN_IN)
    console = request.app[CONSOLE_KEY]
    key, back = values.get("key"), values.get("next", HOME)
    if key is None or await console.keys.principal(key) is None:
        context = {"next": back, "error": "That API key is unknown or revoked."}
        return render(request, "sign_in.html", context, 401)
    token, _ = console.sealer.seal(key)
    response = see_other(back)
    response.set_cookie(
        COOKIE,
        token,
        max_age=console.sealer.lifetime_s,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=request.secure or browser_scheme(request) == "https",
    )
    return response


async def _sign_out(request: web.Request) -> web.StreamResponse:
    visitor = await visitor_of(request)
    same_origin(request)
    if not visitor.session.csrf_matches((await form_of(request)).get("csrf")):
        raise Problem(403, "Forbidden", "the form's CSRF token is missing or wrong")
    response = see_other(SIGN_IN)
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


sign_in_page = guarded(_sign_in_page)
sign_in = guarded(_sign_in)
sign_out = guarded(_sign_out)
