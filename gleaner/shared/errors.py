"""The one error tree of Gleaner: configuration, wire format, handler outcomes and HTTP problems."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# handler outcomes are part of the public handler API; re-exported here for the services
from gleaner.handlers import HandlerError, PermanentError, RetryableError

__all__ = [
    "ConfigError",
    "DecodeError",
    "GleanerError",
    "HandlerError",
    "MigrationError",
    "PermanentError",
    "Problem",
    "RetryableError",
    "StartupError",
    "UnknownKindError",
    "ValidationProblem",
    "field_error",
]


class GleanerError(Exception):
    """Base of every error Gleaner raises on purpose."""


class ConfigError(GleanerError):
    """One or more configuration variables are wrong; every problem is listed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        separator = " " if len(self.problems) == 1 else "\n  "
        super().__init__("invalid configuration:" + separator + "\n  ".join(self.problems))


class StartupError(GleanerError):
    """A service cannot start for a reason a restart does not fix (a database that does not exist, a port in use):
    printed as one line with the fix, exit code 2."""


class DecodeError(GleanerError):
    """A broker message body is not a valid Gleaner envelope."""


class MigrationError(GleanerError):
    """The migration files and the database disagree."""


class UnknownKindError(PermanentError):
    """No handler is registered under the job's kind."""

    error_class = "unknown_kind"


class Problem(GleanerError):
    """An HTTP error rendered as RFC 9457 problem+json by the gateway's middleware."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def body(self, instance: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
            "instance": instance,
        }
        if self.errors:
            out["errors"] = self.errors
        return out


def field_error(field: str, message: str) -> dict[str, str]:
    """One entry of a problem's `errors` list, naming the offending field (a JSON pointer)."""
    return {"field": field, "message": message}


class ValidationProblem(Problem):
    """422: the request is well-formed JSON but its content is wrong."""

    def __init__(self, errors: Sequence[Mapping[str, Any]], detail: str = "") -> None:
        names = ", ".join(str(e.get("field", "")) for e in errors)
        super().__init__(422, "Unprocessable Content", detail or f"invalid fields: {names}", errors=errors)
