"""Writing handlers: a `Registry` of kinds, the errors a handler raises, and `Partial` for work partly done.

    registry = Registry()

    @registry.handler("boards.scrape", queue="scraping", schema={"type": "object", "required": ["url"]})
    async def scrape(ctx: JobContext) -> JsonInput:
        ...

A worker started with `--handlers your.module` imports the module, serves the kinds of its `registry` and
registers them (name, queue, description, payload schema, privileged flag) in PostgreSQL, where the gateway
checks submissions against them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from gleaner.job_context import JobContext
from gleaner.json_types import JsonInput, JsonObjectInput

__all__ = [
    "Handler",
    "HandlerError",
    "KindSpec",
    "Partial",
    "PermanentError",
    "Registry",
    "RetryableError",
    "SoftTimeLimitExceeded",
]


class HandlerError(Exception):
    """Raised by a job handler; `error_class` names the failure in the job record."""

    retryable = True
    error_class = "handler_error"

    def __init__(self, message: str, *, error_class: str | None = None) -> None:
        super().__init__(message)
        if error_class is not None:
            self.error_class = error_class


class RetryableError(HandlerError):
    """A failure worth another attempt (network trouble, a 5xx, a rate limit): the job retries with backoff."""

    error_class = "retryable"


class PermanentError(HandlerError):
    """A failure another attempt cannot fix (bad payload, a 404, a refused URL): the job fails at once."""

    retryable = False
    error_class = "permanent"


class SoftTimeLimitExceeded(RetryableError):
    """Raised inside a handler when its job's `soft_timeout_s` passes, before the hard `timeout_s`.

    Catch it to save partial work and return (or raise); left uncaught, the attempt ends as a retryable
    `soft_time_limit` failure. A handler that swallows it and carries on is still stopped at `timeout_s`.
    """

    error_class = "soft_time_limit"


@dataclass(frozen=True, slots=True)
class Partial:
    """Return this from a handler when part of the work failed: the job ends `partial` with this result."""

    result: JsonInput


Handler = Callable[[JobContext], Awaitable[JsonInput | Partial]]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One kind as a worker serves and registers it.

    `queue`: where its jobs go when a submission names no queue (None: the default queue). `schema`: a JSON
    Schema (2020-12) of the payload, checked by the gateway at submit (422 naming the member) and by the worker
    before the handler runs; `"format": "uri"` members are checked as the fetch client would (http/https, no
    private addresses). `privileged`: only the `admin` scope may submit it (every `maintenance.*` kind is).
    `soft_timeout_s`: the soft time limit of its jobs that set none (`SoftTimeLimitExceeded`); a limit not below
    a job's `timeout_s` is not applied.
    """

    name: str
    handler: Handler
    queue: str | None = None
    description: str | None = None
    schema: JsonObjectInput | None = None
    privileged: bool = False
    soft_timeout_s: float | None = None


class Registry:
    """Kind name → handler with what the gateway needs to know of it; `@registry.handler(...)` adds one."""

    def __init__(self) -> None:
        self._kinds: dict[str, KindSpec] = {}

    def handler(
        self,
        name: str,
        *,
        queue: str | None = None,
        description: str | None = None,
        schema: JsonObjectInput | None = None,
        privileged: bool = False,
        soft_timeout_s: float | None = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator form of `add`: the function is registered under `name` and returned unchanged."""

        def register(function: Handler) -> Handler:
            self.add(
                name,
                function,
                queue=queue,
                description=description,
                schema=schema,
                privileged=privileged,
                soft_timeout_s=soft_timeout_s,
            )
            return function

        return register

    def add(
        self,
        name: str,
        handler: Handler,
        *,
        queue: str | None = None,
        description: str | None = None,
        schema: JsonObjectInput | None = None,
        privileged: bool = False,
        soft_timeout_s: float | None = None,
    ) -> None:
        """Register `handler` for `name`; a name registered twice, a schema that is not one or a soft time limit
        that is not a positive number raises ValueError."""
        if name in self._kinds:
            raise ValueError(f"job kind {name!r} is registered twice")
        if soft_timeout_s is not None and not (isinstance(soft_timeout_s, int | float) and soft_timeout_s > 0):
            raise ValueError(f"job kind {name!r}: soft_timeout_s must be a positive number of seconds")
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise ValueError(f"job kind {name!r}: the payload schema is invalid: {exc.message}") from None
        doc = description if description is not None else _first_line(handler.__doc__)
        self._kinds[name] = KindSpec(name, handler, queue, doc, schema, privileged, soft_timeout_s)

    def include(self, other: Registry) -> None:
        """Add every kind of `other` (a plugin module's registry) to this one."""
        for spec in other:
            self.add(
                spec.name,
                spec.handler,
                queue=spec.queue,
                description=spec.description,
                schema=spec.schema,
                privileged=spec.privileged,
                soft_timeout_s=spec.soft_timeout_s,
            )

    def get(self, name: str) -> KindSpec:
        """The kind registered as `name`; KeyError when there is none."""
        return self._kinds[name]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[KindSpec]:
        return iter(sorted(self._kinds.values(), key=lambda spec: spec.name))

    def __len__(self) -> int:
        return len(self._kinds)


def _first_line(doc: str | None) -> str | None:
    line = (doc or "").strip().split("\n", 1)[0].strip()
    return line or None
