"""The handler registry: built-in kinds plus modules named in GLEANER_HANDLER_MODULES.

A handler module defines `register(registry)` and calls `registry.add("kind", handler)` there; the
worker (to run them) and the gateway (to refuse unknown kinds at submit) both load the same registry.
`registry.add(kind, handler, privileged=True)` makes a kind submittable only with the `admin` scope (every
`maintenance.*` kind is), and `payload_check=` a check the gateway runs on its payloads at submit (422 naming the
member); `registry.config` is the process's configuration, for handlers that depend on settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from gleaner.services.worker.context import JobContext
from gleaner.shared.config import Config
from gleaner.shared.errors import ConfigError, UnknownKindError
from gleaner.shared.kind_rules import KindRules, PayloadCheck

Handler = Callable[[JobContext], Awaitable[Any]]

BUILTIN_MODULES = (
    "gleaner.services.worker.handlers.builtin",
    "gleaner.services.worker.handlers.http_fetch",
    "gleaner.services.worker.handlers.scrape_pages",
    "gleaner.services.worker.handlers.maintenance",
    "gleaner.services.worker.handlers.webhooks",
)


class Registry:
    """Job kind → async handler, with what submitting the kind takes (scope, payload check)."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else Config()
        self._handlers: dict[str, Handler] = {}
        self._privileged: set[str] = set()
        self._checks: dict[str, PayloadCheck] = {}

    def add(
        self, kind: str, handler: Handler, *, privileged: bool = False, payload_check: PayloadCheck | None = None
    ) -> None:
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} is registered twice")
        self._handlers[kind] = handler
        if privileged:
            self._privileged.add(kind)
        if payload_check is not None:
            self._checks[kind] = payload_check

    def rules(self) -> KindRules:
        """What the gateway checks submissions against."""
        return KindRules(frozenset(self._handlers), frozenset(self._privileged), dict(self._checks))

    def get(self, kind: str) -> Handler:
        try:
            return self._handlers[kind]
        except KeyError:
            raise UnknownKindError(f"no handler registered for kind {kind!r}") from None

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._handlers))

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self)


def load_registry(config: Config) -> Registry:
    """Import the built-in handler modules and the configured ones; each must define `register`."""
    registry = Registry(config)
    problems: list[str] = []
    for name in (*BUILTIN_MODULES, *config.handler_modules):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            problems.append(f"GLEANER_HANDLER_MODULES: cannot import {name!r}: {exc}")
            continue
        register = getattr(module, "register", None)
        if not callable(register):
            problems.append(f"GLEANER_HANDLER_MODULES: {name!r} has no register(registry) function")
            continue
        try:
            register(registry)
        except ValueError as exc:
            problems.append(f"GLEANER_HANDLER_MODULES: {name!r}: {exc}")
    if problems:
        raise ConfigError(problems)
    return registry
