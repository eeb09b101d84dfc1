"""Pure validation of a site policy (PUT /sites/{name}): a JSON body in, a typed SitePolicy or field errors out."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from gleaner.shared.errors import ValidationProblem, field_error
from gleaner.shared.field_checks import FieldReader, Invalid, boolean, integer, number, text

# the one rule for site names (jobs name their site by it too); the same as the CHECK constraint on sites.name
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
NAME_RULE = "1-63 lowercase letters, digits, _ . - starting with a letter or digit"
# a job's `site`, a schedule template's: the converter; a PUT /sites/{name} path: the problem
site_name = text(NAME, f"a site name, {NAME_RULE}")
NAME_PROBLEM = f"must be {NAME_RULE}"
CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?")
# printable text only: a user agent becomes a header, so no CR/LF (header injection) and no other controls
USER_AGENT = re.compile(r"[\x20-\x7e\u00a0-\uffff]{1,512}")
# the slowest rate a site may have: one request per 100 hours. Slower rates put a job's next turn centuries away
# (1e-9 an hour meant the year 116106, which no datetime holds)
MIN_REQUESTS_PER_HOUR = 0.01
FACTOR = number(1, 1000)
HOURS_KEYS = frozenset({"timezone", "start", "end", "factor"})
MAX_BYTES = 1 << 30
DAY_S = 86_400.0
ROBOTS = ("obey", "ignore")
# a proxy is named, never written: an environment variable of the worker, or a (secret) file it can read
PROXY_REFERENCE = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]{0,127}|file:/[\x21-\x7e]{1,511}")
MAX_PROXIES = 32
# what GET shows besides the policy; a body fetched with GET may be sent back, so these are ignored
READ_ONLY = frozenset({"name", "state", "created_at", "updated_at"})

Errors = list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class SitePolicy:
    """A validated policy; every column of `sites` a PUT sets (omitted fields take their defaults)."""

    requests_per_hour: float = 3600.0
    burst: int = 1
    min_delay_s: float = 0.0
    pause_min_s: float = 0.0
    pause_max_s: float = 0.0
    respectful_hours: dict[str, Any] | None = None
    max_concurrency: int | None = None
    partial_error_ratio: float = 0.3
    timeout_s: float = 30.0
    max_bytes: int = 10 * 1024 * 1024
    user_agent: str | None = None
    robots: str = "obey"
    adaptive: bool = False
    proxies: tuple[str, ...] = ()


def effective_delay_s(min_delay_s: float, crawl_delay_s: float | None, adaptive_delay_s: float | None) -> float:
    """The spacing a site's requests get: the largest of its policy, its robots.txt Crawl-delay, the adaptive one."""
    return max(min_delay_s, crawl_delay_s or 0.0, adaptive_delay_s or 0.0)


def effective_requests_per_hour(requests_per_hour: float, delay_s: float) -> float:
    """The rate a site gets at most: its policy's, lowered by the spacing (never above the policy)."""
    return requests_per_hour if delay_s <= 0 else min(requests_per_hour, 3600.0 / delay_s)


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None


def parse_site(name: str, data: Any) -> SitePolicy:
    """The policy in a PUT body for the site `name`; raises ValidationProblem listing every bad field."""
    if not isinstance(data, dict):
        raise ValidationProblem([field_error("body", "must be a JSON object")])
    errors: Errors = [field_error(key, "unknown field") for key in sorted(set(data) - FIELDS.keys() - READ_ONLY)]
    if not valid_name(name):
        errors.append(field_error("name", NAME_PROBLEM))
    elif data.get("name", name) != name:
        errors.append(field_error("name", f"must match the name in the path ({name!r}) or be left out"))
    values = FieldReader(data, errors=errors).present(FIELDS)
    pause_min, pause_max = values.get("pause_min_s", 0.0), values.get("pause_max_s")
    if pause_max is None:
        # a lone pause_min_s means a fixed pause
        values["pause_max_s"] = pause_min
    elif pause_max < pause_min and not _failed(errors, "pause_min_s"):
        errors.append(field_error("pause_max_s", "must not be below pause_min_s"))
    if errors:
        raise ValidationProblem(errors)
    return SitePolicy(**values)


def _failed(errors: Errors, name: str) -> bool:
    return any(e["field"] == name for e in errors)


def _user_agent(value: Any) -> str:
    if not isinstance(value, str) or not USER_AGENT.fullmatch(value):
        raise Invalid("must be 1-512 printable characters (no control characters)")
    return value


def _robots(value: Any) -> str:
    if value not in ROBOTS:
        raise Invalid(f"must be one of {', '.join(ROBOTS)}")
    return str(value)


def _proxies(value: Any) -> tuple[str, ...]:
    """References to egress proxies, used in rotation: `env:NAME` (a variable of the worker holding the proxy URL)
    or `file:/path` (a mounted secret holding it). A URL itself is refused: its credentials would be stored."""
    if not isinstance(value, list) or len(value) > MAX_PROXIES:
        raise Invalid(f"must be a list of at most {MAX_PROXIES} proxy references")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not PROXY_REFERENCE.fullmatch(item):
            raise Invalid("must be env:NAME or file:/path (the proxy URL itself is never stored)", f"proxies[{index}]")
    return tuple(value)


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _timezone(value: Any) -> str:
    message = "must be an IANA timezone name such as Europe/Berlin"
    if not isinstance(value, str) or value not in _zones():
        raise Invalid(message, "respectful_hours.timezone")
    try:
        ZoneInfo(value)  # the worker reads it this way
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(message, "respectful_hours.timezone") from None
    return value


def _clock(key: str, value: Any) -> str:
    if not isinstance(value, str) or not CLOCK.fullmatch(value):
        raise Invalid("must be a local time HH:MM (or HH:MM:SS) from 00:00 to 23:59", f"respectful_hours.{key}")
    return value


def _respectful_hours(value: Any) -> dict[str, Any]:
    """{"timezone", "start", "end", "factor"}: requests are `factor` times slower from start to end (local)."""
    if not isinstance(value, dict) or set(value) != HOURS_KEYS:
        raise Invalid("must be null or an object with exactly timezone, start, end and factor")
    try:
        factor = FACTOR(value["factor"])
    except Invalid as exc:
        raise Invalid(str(exc), "respectful_hours.factor") from None
    return {
        "timezone": _timezone(value["timezone"]),
        "start": _clock("start", value["start"]),
        "end": _clock("end", value["end"]),
        "factor": factor,
    }


# the policy fields of a PUT body and how each is checked (the ranges of the CHECK constraints, plus sane caps)
FIELDS: dict[str, Callable[[Any], Any]] = {
    "requests_per_hour": number(MIN_REQUESTS_PER_HOUR, 1e9),
    "burst": integer(1, 1_000_000),
    "min_delay_s": number(0, DAY_S),
    "pause_min_s": number(0, DAY_S),
    "pause_max_s": number(0, DAY_S),
    "respectful_hours": _respectful_hours,
    "max_concurrency": integer(1, 10_000),
    "partial_error_ratio": number(0, 1),
    "timeout_s": number(0, 3600, exclusive_low=True),
    "max_bytes": integer(1, MAX_BYTES),
    "user_agent": _user_agent,
    "robots": _robots,
    "adaptive": boolean,
    "proxies": _proxies,
}
