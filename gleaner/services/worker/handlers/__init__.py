"""The kinds this worker serves: the built-in ones plus those of the modules in `--handlers`/GLEANER_HANDLER_MODULES.

A handler module holds a `gleaner.Registry` named `registry` (or defines `register(registry)` and adds its kinds
there). Modules are imported from the current directory too, as Celery's `-A` does. The worker registers the
kinds in PostgreSQL (gleaner.services.worker.kind_registration), where the gateway reads them: it never
imports handler code. Each handler runs behind its kind's payload schema, the same check the gateway ran.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Iterator

from gleaner.handlers import Handler, KindSpec, Partial, Registry
from gleaner.job_context import JobContext
from gleaner.json_types import JsonInput
from gleaner.services.worker.handlers import builtin, http_fetch, maintenance, scrape_pages, webhooks
from gleaner.shared.config import Config
from gleaner.shared.errors import ConfigError, PermanentError, UnknownKindError
from gleaner.shared.kind_rules import KindRules, PayloadCheck
from gleaner.shared.payload_schemas import SchemaChecks
from gleaner.shared.urlguard import Policy

__all__ = ["Handler", "Registry", "ServedKinds", "builtin_registry", "load_registry"]


class ServedKinds:
    """Kind → handler as the consumer runs it: behind the kind's payload check when it has a schema."""

    def __init__(self, registry: Registry, policy: Policy | None = None) -> None:
        # URLs are left to the fetch client, which refuses them as `ssrf_blocked` (resolved addresses included)
        checks = SchemaChecks(None)
        self.registry = registry
        self._policy = policy or Policy()
        self._checks = {spec.name: checks.check_of(spec.schema) for spec in registry if spec.schema is not None}

    def rules(self) -> KindRules:
        """What the gateway would check submissions against once these kinds are registered (`schedules apply`):
        URLs included, under the configured fetch policy."""
        specs = list(self.registry)
        schemas = SchemaChecks(self._policy)
        return KindRules(
            known=frozenset(s.name for s in specs),
            privileged=frozenset(s.name for s in specs if s.privileged),
            checks={s.name: schemas.check_of(s.schema) for s in specs if s.schema is not None},
            queues={s.name: s.queue for s in specs if s.queue is not None},
        )

    def get(self, kind: str) -> Handler:
        try:
            spec = self.registry.get(kind)
        except KeyError:
            raise UnknownKindError(f"no handler registered for kind {kind!r}") from None
        check = self._checks.get(kind)
        return spec.handler if check is None else functools.partial(_checked, spec.handler, check)

    def soft_timeout_s(self, kind: str) -> float | None:
        """The kind's default soft time limit (None: none, or not a kind served here)."""
        return self.registry.get(kind).soft_timeout_s if kind in self.registry else None

    def __contains__(self, kind: object) -> bool:
        return kind in self.registry

    def __iter__(self) -> Iterator[KindSpec]:
        return iter(self.registry)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.registry)


async def _checked(handler: Handler, check: PayloadCheck, ctx: JobContext) -> JsonInput | Partial:
    """A payload that slipped past the gateway (an old schedule, a message sent by hand) never reaches the handler."""
    problems = check(ctx.job.payload)
    if problems:
        text = "; ".join(f"payload.{path}: {message}" if path else f"payload: {message}" for path, message in problems)
        raise PermanentError(text, error_class="bad_payload")
    return await handler(ctx)


def builtin_registry(config: Config) -> Registry:
    """The kinds every worker serves (noop, sleep, fail, http.fetch, scrape.pages, maintenance.*, webhook.deliver)."""
    registry = Registry()
    for module in (builtin, http_fetch, scrape_pages, webhooks):
        registry.include(module.registry)
    maintenance.register(registry, maintenance.Retention.of(config))
    return registry


def load_registry(config: Config) -> ServedKinds:
    """The built-in kinds and those of the configured modules; every problem is reported at once."""
    registry = builtin_registry(config)
    problems: list[str] = []
    for name in config.handler_modules:
        try:
            _add_module(registry, name)
        except (ImportError, ValueError) as exc:
            problems.append(f"GLEANER_HANDLER_MODULES: {name!r}: {exc}")
    if problems:
        raise ConfigError(problems)
    return ServedKinds(registry, Policy.configured(config.fetch_allow_private))


def _add_module(registry: Registry, name: str) -> None:
    # the current directory first, as `python -m` and Celery's -A do: `--handlers myproject.tasks` finds it there
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(name)
    own = getattr(module, "registry", None)
    register = getattr(module, "register", None)
    if isinstance(own, Registry):
        registry.include(own)
    elif callable(register):
        register(registry)
    else:
        raise ValueError("defines neither a gleaner.Registry named `registry` nor a register(registry) function")
