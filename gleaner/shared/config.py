"""Configuration read once from GLEANER_* environment variables into a frozen dataclass."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from gleaner.shared.errors import ConfigError

QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
NAMESPACE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
PREFIX = "GLEANER_"
# GLEANER_* variables that are not settings: the test and development tooling's own (tests/support/services.py)
TOOLING_PREFIXES = ("GLEANER_TEST_",)
# a retention longer than a century is a typo; 0 keeps forever
MAX_RETENTION_DAYS = 36_500
DEFAULT_PORTS = {"gateway": 8080, "worker": 8081, "scheduler": 8082}

T = TypeVar("T")
Read = Callable[["_Reader", str, T], T]
SPEC = "gleaner.setting"


@dataclass(frozen=True, slots=True)
class Spec(Generic[T]):
    """How a setting is read from its variable (type and range: `read` reports a bad value with the allowed
    range), what it is for, and how the README shows its default when that is not the default itself."""

    read: Read[T]
    help: str
    shown: str = ""


def setting(default: T, read: Read[T], help: str, shown: str = "") -> T:
    """A Config field and its setting, declared once: the variable is GLEANER_ + the field's name in capitals."""
    return field(default=default, metadata={SPEC: Spec(read, help, shown)})


def text() -> Read[str]:
    return lambda reader, name, default: reader.text(name, default)


def flag() -> Read[bool]:
    return lambda reader, name, default: reader.flag(name, default)


def matching(pattern: re.Pattern[str]) -> Read[str]:
    return lambda reader, name, default: reader.match(name, default, pattern)


def queue_names() -> Read[tuple[str, ...]]:
    return lambda reader, name, default: reader.names(name, default)


def optional(convert: Callable[[str], T]) -> Read[T | None]:
    return lambda reader, name, default: reader.optional(name, convert)


def number(kind: Callable[[str], T], low: float, high: float) -> Read[T]:
    return lambda reader, name, default: reader.number(name, default, kind, low, high)


def choice(choices: tuple[str, ...]) -> Read[str]:
    return lambda reader, name, default: reader.choice(name, default, choices)


def modules() -> Read[tuple[str, ...]]:
    return lambda reader, name, default: reader.modules(name)


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number 0-65535")
    return value


def _token(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw


def _secret(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError("must be at least 32 characters")
    return raw


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a Gleaner process needs to know, validated as a whole. Each field is a setting, declared once
    (default, type and range, help); `from_env`, the known names and the README table check derive from it."""

    database_url: str = setting("postgresql://postgres@127.0.0.1:5432/gleaner", text(), "PostgreSQL")
    amqp_url: str = setting("amqp://guest:guest@127.0.0.1:5672/", text(), "RabbitMQ")
    amqp_declare: bool = setting(
        True, flag(), "declare the exchanges and queues at start; off: only check they exist (gleaner migrate)"
    )
    rabbitmq_management_url: str = setting(
        "",
        text(),
        "RabbitMQ's management API for GET /queues' unacked counts; empty: the AMQP host on 15672; off: not asked",
        shown="the AMQP host on port 15672",
    )
    queue_depth_ttl_s: float = setting(
        5.0,
        number(float, 0, 3600),
        "how often each gateway asks the broker for the counts GET /queues shows (`0`: every request asks)",
    )
    namespace: str = setting("gleaner", matching(NAMESPACE_NAME), "prefix of every exchange and queue")
    queues: tuple[str, ...] = setting(("default",), queue_names(), "the named queues")
    http_host: str = setting("127.0.0.1", text(), "where each service listens")
    http_port: int | None = setting(
        None, optional(_port), "the service's port", shown="8080 gateway, 8081 worker, 8082 scheduler"
    )
    gateway_processes: int = setting(
        1,
        number(int, 1, 64),
        "processes the gateway serves its port from on this host: one per core on a host of its own; in Kubernetes"
        " keep 1 and scale replicas",
    )
    admin_token: str | None = setting(None, optional(_token), "accepted as an admin key", shown="none")
    api_url: str = setting(
        "",
        text(),
        "where the operator commands reach the gateway; empty: this host's gateway port",
        shown="this host's gateway (`http://127.0.0.1:8080/api/v1`)",
    )
    api_token: str | None = setting(
        None, optional(str), "the key of the operator commands", shown="`GLEANER_ADMIN_TOKEN`"
    )
    console_secret: str | None = setting(
        None,
        optional(_secret),
        "signs and encrypts the console's session cookies; unset: a random one per gateway process",
        shown="random per process",
    )
    console_session_s: float = setting(
        8 * 3600.0, number(float, 60, 30 * 86_400), "how long a console sign-in lasts", shown="`28800` (8 hours)"
    )
    api_rate_per_s: float = setting(
        0.0, number(float, 0, 1_000_000), "requests per second per API key at each gateway", shown="`0` (no limit)"
    )
    api_burst: int = setting(0, number(int, 0, 1_000_000), "the rate limit's burst", shown="`0` (twice the rate)")
    worker_queues: tuple[str, ...] = setting((), queue_names(), "the queues this worker consumes", shown="all queues")
    worker_concurrency: int = setting(
        32, number(int, 1, 10_000), "jobs a worker runs at once (it holds about twice as many)"
    )
    # 64 against 16: a third less worker CPU a job and half the messages RabbitMQ stores, routes and acks, for
    # no loss to a slow job's neighbours: each job of a group takes its own slot and has its outcome written and its
    # window place freed as it ends; only the group's ack waits for the slowest, and the prefetch lets another
    # message in meanwhile (prefetch.py). What a group costs is the jobs that wait in one worker for its slots, up
    # to a group beyond its concurrency: keep it at most twice GLEANER_WORKER_CONCURRENCY (README, Configuration)
    group_max_jobs: int = setting(
        64,
        number(int, 1, 1000),
        "jobs of one queue and priority one message may carry (`1`: a message per job; at most twice the workers' "
        "concurrency, or a worker hands the rest of each group on)",
    )
    worker_id: str | None = setting(None, optional(str), "the name of a worker", shown="host-pid")
    worker_max_jobs: int = setting(
        0,
        number(int, 0, 2**31),
        "jobs a worker takes before it drains and exits 0 to be restarted",
        shown="`0` (no limit)",
    )
    worker_max_rss_mb: int = setting(
        0, number(int, 0, 2**20), "resident memory past which a worker drains and exits 0", shown="`0` (no limit)"
    )
    delay_unit_ms: int = setting(1000, number(int, 1, 3_600_000), "the delay unit of the TTL levels")
    delay_levels: int = setting(16, number(int, 1, 32), "number of TTL levels")
    handler_modules: tuple[str, ...] = setting((), modules(), "modules that register handlers", shown="none")
    log_level: str = setting("INFO", choice(LOG_LEVELS), "the log level")
    fetch_allow_private: bool = setting(False, flag(), "let http.fetch reach private addresses")
    fetch_max_bytes: int = setting(
        10 * 1024 * 1024, number(int, 1, 2**31), "response size cap of the fetch client", shown="10 MiB"
    )
    fetch_contact_url: str = setting(
        "", text(), "the URL the default User-Agent names, where a site's operator learns who crawls it", shown="none"
    )
    robots_ttl_s: float = setting(
        86_400.0, number(float, 1, 86_400 * 30), "how long every worker trusts a fetched robots.txt"
    )
    lease_s: float = setting(30.0, number(float, 0.5, 86_400), "how long a claim holds without a heartbeat")
    shutdown_grace_s: float = setting(30.0, number(float, 0, 86_400), "how long a stopping worker lets jobs finish")
    max_body_bytes: int = setting(4 * 1024 * 1024, number(int, 1024, 2**30), "request body limit", shown="4 MiB")
    batch_window_ms: float = setting(2.0, number(float, 0, 1000), "group commit: how long writes gather")
    batch_max: int = setting(500, number(int, 1, 10_000), "group commit: rows in one statement")
    events_keepalive_s: float = setting(
        15.0, number(float, 0.1, 3600), "seconds between the keep-alive comments of GET /events"
    )
    relay_interval_s: float = setting(1.0, number(float, 0.05, 3600), "relay period")
    relay_grace_s: float = setting(30.0, number(float, 0, 3600), "age before an unconfirmed row is relayed")
    mark_delay_s: float = setting(
        0.5,
        number(float, 0, 60),
        "how long publishers gather broker confirms before marking rows enqueued (at most a quarter of the relay's"
        " grace); rows claimed by then are not written",
    )
    relay_stale_s: float = setting(600.0, number(float, 1, 86_400 * 7), "age past due of a presumed lost message")
    reaper_interval_s: float = setting(2.0, number(float, 0.05, 3600), "lease reaper period")
    retention_days: float = setting(
        30.0, number(float, 0, MAX_RETENTION_DAYS), "finished jobs older than this are pruned; 0 keeps them"
    )
    result_retention_days: float = setting(
        7.0, number(float, 0, MAX_RETENTION_DAYS), "results and progress older than this are dropped; 0 keeps them"
    )
    prune_interval_s: float = setting(300.0, number(float, 0.1, 86_400), "the scheduler's prune period")
    prune_batch: int = setting(1000, number(int, 1, 100_000), "rows one pruning statement deletes (one transaction)")
    prune_pause_ratio: float = setting(
        4.0, number(float, 0, 1000), "while jobs wait, rest this many times as long as each pruning batch took"
    )
    prune_budget_s: float = setting(
        30.0,
        number(float, 0, 86_400),
        "longest turn of a table in a prune pass (0: none); rows left: next pass at once",
    )
    dead_letter_ttl_s: int = setting(
        7 * 24 * 3600, number(int, 1, 2**31 // 1000), "TTL of the dead-letter mirror queue", shown="7 days"
    )
    default_max_attempts: int = setting(3, number(int, 1, 1000), "job default")
    default_timeout_s: float = setting(300.0, number(float, 0.001, 86_400), "job default")
    default_retry_base_s: float = setting(1.0, number(float, 0, 86_400), "job default")
    default_retry_cap_s: float = setting(300.0, number(float, 0, 86_400 * 30), "job default")

    @property
    def default_queue(self) -> str:
        """Where a job that names no queue goes: `default` when it is configured, else the first queue."""
        return "default" if "default" in self.queues else self.queues[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read every GLEANER_* variable; raise ConfigError listing all problems at once."""
        reader = _Reader(env)
        values: dict[str, Any] = {s.field: s.spec.read(reader, s.name, s.default) for s in SETTINGS}
        config = cls(**values)
        reader.check(config)
        reader.unknown_names()
        if reader.problems:
            raise ConfigError(reader.problems)
        return config

    @property
    def gateway_api_url(self) -> str:
        """Where the operator commands send their requests: GLEANER_API_URL, or this host's gateway."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
        return f"http://{host}:{self.port_for('gateway')}/api/v1"

    def port_for(self, service: str) -> int:
        return self.http_port if self.http_port is not None else DEFAULT_PORTS.get(service, 8080)

    @property
    def consumed_queues(self) -> tuple[str, ...]:
        """The queues a worker consumes: GLEANER_WORKER_QUEUES, or every queue."""
        return self.worker_queues or self.queues

    @property
    def delay_unit_s(self) -> float:
        return self.delay_unit_ms / 1000.0

    @property
    def mark_after_s(self) -> float:
        """How long confirmed rows wait for their marker: GLEANER_MARK_DELAY_S, well within the relay's grace."""
        return min(self.mark_delay_s, self.relay_grace_s / 4)

    @property
    def max_delay_s(self) -> float:
        """The longest delay the TTL levels can hold; longer ones wait in PostgreSQL."""
        return ((1 << self.delay_levels) - 1) * self.delay_unit_s


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting as declared on Config: its variable, field, default and Spec."""

    name: str
    field: str
    default: Any
    spec: Spec[Any]

    @property
    def shown(self) -> str:
        """The default as the README's settings table shows it."""
        if self.spec.shown:
            return self.spec.shown
        return f"`{_shown(self.default)}`"


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


SETTINGS = tuple(Setting(PREFIX + f.name.upper(), f.name, f.default, f.metadata[SPEC]) for f in fields(Config))
KNOWN_NAMES = frozenset(s.name for s in SETTINGS)


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def match(self, name: str, default: str, pattern: re.Pattern[str]) -> str:
        value = self.text(name, default)
        if not pattern.fullmatch(value):
            self.problems.append(f"{name}={value!r}: must match {pattern.pattern}")
        return value

    def optional(self, name: str, convert: Callable[[str], T]) -> T | None:
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            return convert(raw)
        except ValueError as exc:
            self.problems.append(f"{name}={raw!r}: {exc}")
            return None

    def number(self, name: str, default: T, kind: Callable[[str], T], low: float, high: float) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r}: not a valid {getattr(kind, '__name__', 'number')}")
            return default
        if not low <= value <= high:  # type: ignore[operator]
            self.problems.append(f"{name}={raw!r}: must be between {low:g} and {high:g}")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name}={raw!r}: must be one of 1/0, true/false, yes/no, on/off")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).upper()
        if value not in choices:
            self.problems.append(f"{name}={value!r}: must be one of {', '.join(choices)}")
            return default
        return value

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return default
        items = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
        bad = [item for item in items if not QUEUE_NAME.fullmatch(item)]
        if bad or not items:
            self.problems.append(f"{name}={raw!r}: queue names are lowercase letters, digits, _ and -")
            return default
        return items

    def modules(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        items = tuple(part.strip() for part in raw.split(",") if part.strip())
        bad = [item for item in items if not re.fullmatch(r"[A-Za-z_][\w.]*", item)]
        if bad:
            self.problems.append(f"{name}={raw!r}: not importable module names: {', '.join(bad)}")
        return items

    def unknown_names(self) -> None:
        """A GLEANER_* variable no setting reads is a typo until proven otherwise (GLEANER_WORKER_CONCURENCY=4
        was ignored and the worker ran 32 slots); variables of the test tooling (GLEANER_TEST_*) are not settings."""
        for name in sorted(self.env):
            if name.startswith(PREFIX) and name not in KNOWN_NAMES and not name.startswith(TOOLING_PREFIXES):
                # compared without the common prefix, which would make every name look alike
                cut = len(PREFIX)
                close = difflib.get_close_matches(name[cut:], [known[cut:] for known in sorted(KNOWN_NAMES)], n=1)
                hint = f"; did you mean {PREFIX}{close[0]}?" if close else ""
                self.problems.append(f"{name}: not a Gleaner setting{hint}")

    def check(self, config: Config) -> None:
        unknown = [q for q in config.worker_queues if q not in config.queues]
        if unknown:
            self.problems.append(
                f"GLEANER_WORKER_QUEUES: {', '.join(unknown)} not in GLEANER_QUEUES ({', '.join(config.queues)})"
            )
        if not config.database_url.startswith(("postgres://", "postgresql://")):
            self.problems.append(f"GLEANER_DATABASE_URL={config.database_url!r}: must start with postgresql://")
        if not config.amqp_url.startswith(("amqp://", "amqps://")):
            self.problems.append(f"GLEANER_AMQP_URL={config.amqp_url!r}: must start with amqp:// or amqps://")
        if config.api_url and not config.api_url.startswith(("http://", "https://")):
            self.problems.append(f"GLEANER_API_URL={config.api_url!r}: must start with http:// or https://")
        contact = config.fetch_contact_url
        if contact and (not contact.startswith(("http://", "https://")) or not contact.isprintable()):
            self.problems.append(f"GLEANER_FETCH_CONTACT_URL={contact!r}: must be an http:// or https:// URL")
        management = config.rabbitmq_management_url
        if management not in ("", "off") and not management.startswith(("http://", "https://")):
            self.problems.append(
                f"GLEANER_RABBITMQ_MANAGEMENT_URL={management!r}: must start with http:// or https://, or be off"
            )
        if config.default_retry_cap_s < config.default_retry_base_s:
            self.problems.append("GLEANER_DEFAULT_RETRY_CAP_S: must not be below GLEANER_DEFAULT_RETRY_BASE_S")
