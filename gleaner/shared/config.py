"""Configuration read once from GLEANER_* environment variables into a frozen dataclass."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

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


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a Gleaner process needs to know, validated as a whole."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/gleaner"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # declare the exchanges and queues at start; off: only check they exist (`gleaner migrate --topology` declares)
    amqp_declare: bool = True
    # RabbitMQ's management API, for the unacked counts of GET /queues; empty: the AMQP host on port 15672
    # with the AMQP credentials; "off": not asked
    rabbitmq_management_url: str = ""
    namespace: str = "gleaner"
    queues: tuple[str, ...] = ("default",)
    http_host: str = "127.0.0.1"
    http_port: int | None = None
    admin_token: str | None = None
    # where the operator commands (`gleaner jobs …`) reach the gateway; empty: this host's gateway port
    api_url: str = ""
    api_token: str | None = None
    # requests per second per API key at each gateway (0: no limit) and the burst (0: twice the rate)
    api_rate_per_s: float = 0.0
    api_burst: int = 0
    worker_queues: tuple[str, ...] = ()
    worker_concurrency: int = 32
    worker_id: str | None = None
    delay_unit_ms: int = 1000
    delay_levels: int = 16
    handler_modules: tuple[str, ...] = ()
    log_level: str = "INFO"
    fetch_allow_private: bool = False
    fetch_max_bytes: int = 10 * 1024 * 1024
    lease_s: float = 30.0
    shutdown_grace_s: float = 30.0
    max_body_bytes: int = 4 * 1024 * 1024
    batch_window_ms: float = 2.0
    batch_max: int = 500
    events_keepalive_s: float = 15.0
    relay_interval_s: float = 1.0
    relay_grace_s: float = 30.0
    relay_stale_s: float = 600.0
    reaper_interval_s: float = 2.0
    retention_days: float = 30.0
    result_retention_days: float = 7.0
    prune_interval_s: float = 300.0
    dead_letter_ttl_s: int = 7 * 24 * 3600
    default_max_attempts: int = 3
    default_timeout_s: float = 300.0
    default_retry_base_s: float = 1.0
    default_retry_cap_s: float = 300.0

    @property
    def default_queue(self) -> str:
        """Where a job that names no queue goes: `default` when it is configured, else the first queue."""
        return "default" if "default" in self.queues else self.queues[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read every GLEANER_* variable; raise ConfigError listing all problems at once."""
        reader = _Reader(env)
        d = cls()
        config = cls(
            database_url=reader.text("GLEANER_DATABASE_URL", d.database_url),
            amqp_url=reader.text("GLEANER_AMQP_URL", d.amqp_url),
            amqp_declare=reader.flag("GLEANER_AMQP_DECLARE", d.amqp_declare),
            rabbitmq_management_url=reader.text("GLEANER_RABBITMQ_MANAGEMENT_URL", d.rabbitmq_management_url),
            namespace=reader.match("GLEANER_NAMESPACE", d.namespace, NAMESPACE_NAME),
            queues=reader.names("GLEANER_QUEUES", d.queues),
            http_host=reader.text("GLEANER_HTTP_HOST", d.http_host),
            http_port=reader.optional("GLEANER_HTTP_PORT", _port),
            admin_token=reader.optional("GLEANER_ADMIN_TOKEN", _token),
            api_url=reader.text("GLEANER_API_URL", d.api_url),
            api_token=reader.optional("GLEANER_API_TOKEN", str),
            api_rate_per_s=reader.number("GLEANER_API_RATE_PER_S", d.api_rate_per_s, float, 0, 1_000_000),
            api_burst=reader.number("GLEANER_API_BURST", d.api_burst, int, 0, 1_000_000),
            worker_queues=reader.names("GLEANER_WORKER_QUEUES", ()),
            worker_concurrency=reader.number("GLEANER_WORKER_CONCURRENCY", d.worker_concurrency, int, 1, 10_000),
            worker_id=reader.optional("GLEANER_WORKER_ID", str),
            delay_unit_ms=reader.number("GLEANER_DELAY_UNIT_MS", d.delay_unit_ms, int, 1, 3_600_000),
            delay_levels=reader.number("GLEANER_DELAY_LEVELS", d.delay_levels, int, 1, 32),
            handler_modules=reader.modules("GLEANER_HANDLER_MODULES"),
            log_level=reader.choice("GLEANER_LOG_LEVEL", d.log_level, LOG_LEVELS),
            fetch_allow_private=reader.flag("GLEANER_FETCH_ALLOW_PRIVATE", d.fetch_allow_private),
            fetch_max_bytes=reader.number("GLEANER_FETCH_MAX_BYTES", d.fetch_max_bytes, int, 1, 2**31),
            lease_s=reader.number("GLEANER_LEASE_S", d.lease_s, float, 0.5, 86_400),
            shutdown_grace_s=reader.number("GLEANER_SHUTDOWN_GRACE_S", d.shutdown_grace_s, float, 0, 86_400),
            max_body_bytes=reader.number("GLEANER_MAX_BODY_BYTES", d.max_body_bytes, int, 1024, 2**30),
            batch_window_ms=reader.number("GLEANER_BATCH_WINDOW_MS", d.batch_window_ms, float, 0, 1000),
            batch_max=reader.number("GLEANER_BATCH_MAX", d.batch_max, int, 1, 10_000),
            events_keepalive_s=reader.number("GLEANER_EVENTS_KEEPALIVE_S", d.events_keepalive_s, float, 0.1, 3600),
            relay_interval_s=reader.number("GLEANER_RELAY_INTERVAL_S", d.relay_interval_s, float, 0.05, 3600),
            relay_grace_s=reader.number("GLEANER_RELAY_GRACE_S", d.relay_grace_s, float, 0, 3600),
            relay_stale_s=reader.number("GLEANER_RELAY_STALE_S", d.relay_stale_s, float, 1, 86_400 * 7),
            reaper_interval_s=reader.number("GLEANER_REAPER_INTERVAL_S", d.reaper_interval_s, float, 0.05, 3600),
            retention_days=reader.number("GLEANER_RETENTION_DAYS", d.retention_days, float, 0, MAX_RETENTION_DAYS),
            result_retention_days=reader.number(
                "GLEANER_RESULT_RETENTION_DAYS", d.result_retention_days, float, 0, MAX_RETENTION_DAYS
            ),
            prune_interval_s=reader.number("GLEANER_PRUNE_INTERVAL_S", d.prune_interval_s, float, 0.1, 86_400),
            dead_letter_ttl_s=reader.number("GLEANER_DEAD_LETTER_TTL_S", d.dead_letter_ttl_s, int, 1, 2**31 // 1000),
            default_max_attempts=reader.number("GLEANER_DEFAULT_MAX_ATTEMPTS", d.default_max_attempts, int, 1, 1000),
            default_timeout_s=reader.number("GLEANER_DEFAULT_TIMEOUT_S", d.default_timeout_s, float, 0.001, 86_400),
            default_retry_base_s=reader.number(
                "GLEANER_DEFAULT_RETRY_BASE_S", d.default_retry_base_s, float, 0, 86_400
            ),
            default_retry_cap_s=reader.number(
                "GLEANER_DEFAULT_RETRY_CAP_S", d.default_retry_cap_s, float, 0, 86_400 * 30
            ),
        )
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
    def max_delay_s(self) -> float:
        """The longest delay the TTL levels can hold; longer ones wait in PostgreSQL."""
        return ((1 << self.delay_levels) - 1) * self.delay_unit_s


class _Reader:
    """Collects problems instead of stopping at the first one, and the names it was asked for."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.known: set[str] = set()

    def _raw(self, name: str) -> str | None:
        self.known.add(name)
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
            if name.startswith(PREFIX) and name not in self.known and not name.startswith(TOOLING_PREFIXES):
                # compared without the common prefix, which would make every name look alike
                cut = len(PREFIX)
                close = difflib.get_close_matches(name[cut:], [known[cut:] for known in self.known], n=1)
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
        management = config.rabbitmq_management_url
        if management not in ("", "off") and not management.startswith(("http://", "https://")):
            self.problems.append(
                f"GLEANER_RABBITMQ_MANAGEMENT_URL={management!r}: must start with http:// or https://, or be off"
            )
        if config.default_retry_cap_s < config.default_retry_base_s:
            self.problems.append("GLEANER_DEFAULT_RETRY_CAP_S: must not be below GLEANER_DEFAULT_RETRY_BASE_S")


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number 0-65535")
    return value


def _token(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw
