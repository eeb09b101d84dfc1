"""The errors the client raises: problem+json answers as `ApiError` by status, and the client's own failures."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, NamedTuple

from gleaner.json_types import Json, JsonObject

if TYPE_CHECKING:
    from gleaner.models import Job

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "FieldError",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "UnexpectedResponse",
    "ValidationError",
    "WaitTimeout",
    "api_error",
]


class ClientError(Exception):
    """Base of every error the Gleaner client raises."""


class FieldError(NamedTuple):
    """One entry of a problem's `errors`: the field (e.g. `priority`, `jobs[3].kind`) and what is wrong."""

    field: str
    message: str


class ApiError(ClientError):
    """The gateway refused the request: an RFC 9457 problem, with the fields it names in `errors`."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        errors: tuple[FieldError, ...] = (),
        *,
        request_id: str | None = None,
        body: Json = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.request_id = request_id
        self.body = body  # the problem as sent, for whoever prints the API's JSON
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"HTTP {self.status} {self.title}".rstrip()
        if self.detail and self.detail != self.title:
            text += f": {self.detail}"
        if self.errors:
            text += " (" + "; ".join(f"{e.field}: {e.message}" for e in self.errors) + ")"
        return text

    def message_for(self, field: str) -> str | None:
        """What the problem says about `field`, or None when it does not name it."""
        return next((e.message for e in self.errors if e.field == field), None)


class BadRequest(ApiError):
    """400: the request is not well-formed (e.g. its body is not JSON)."""


class Unauthorized(ApiError):
    """401: no API key, or one the gateway does not know."""


class Forbidden(ApiError):
    """403: the key lacks the scope (`jobs:read`, `jobs:write`, `admin`)."""


class NotFound(ApiError):
    """404: no such job, schedule, site, queue or dead letter."""


class Conflict(ApiError):
    """409: the request clashes with the current state (a finished job, a taken name or dedupe key)."""


class ValidationError(ApiError):
    """422: the body is JSON but some fields are wrong; `errors` names each."""


class RateLimited(ApiError):
    """429: the key sent more requests than its rate; `retry_after_s` says when to try again."""

    retry_after_s: float | None = None


class ServerError(ApiError):
    """5xx: the gateway failed or a dependency (PostgreSQL) is unavailable."""


class ApiConnectionError(ClientError):
    """The gateway could not be reached, or the connection failed or timed out before an answer (after retries)."""


class UnexpectedResponse(ClientError):
    """The gateway's answer is not what this client understands (not JSON, or a required field missing)."""


class WaitTimeout(ClientError, TimeoutError):
    """`wait` reached its deadline before the job finished; `job` is the job as last seen."""

    def __init__(self, job: Job, timeout_s: float) -> None:
        super().__init__(f"job {job.id} is still {job.state} after {timeout_s:g}s")
        self.job = job


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
    429: RateLimited,
}


def api_error(status: int, body: Json, retry_after_s: float | None = None) -> ApiError:
    """The exception for an error answer; a body that is not a problem still gives status and reason."""
    problem: JsonObject = body if isinstance(body, dict) else {}
    cls = BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    error = cls(
        status,
        _text(problem.get("title")) or _reason(status),
        _text(problem.get("detail")),
        _field_errors(problem.get("errors")),
        request_id=_text(problem.get("request_id")) or None,
        body=body,
    )
    if isinstance(error, RateLimited):
        error.retry_after_s = retry_after_s
    return error


def _text(value: Json) -> str:
    return value if isinstance(value, str) else ""


def _field_errors(value: Json) -> tuple[FieldError, ...]:
    if not isinstance(value, list):
        return ()
    entries = [e for e in value if isinstance(e, dict)]
    return tuple(FieldError(_text(e.get("field")), _text(e.get("message"))) for e in entries)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
