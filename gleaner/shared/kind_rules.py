"""What submitting a job kind takes: that it is registered, whether it needs `admin`, how its payload is checked.

Workers declare it when they register their kinds (the `kinds` table); the gateway checks submissions against it,
and the worker runs the same payload check again before a handler acts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# the one rule for kind names
KIND_NAME = re.compile(r"[a-z0-9_.:-]{1,100}")
# every maintenance kind deletes or rewrites other users' jobs: only `admin` may submit one
PRIVILEGED_PREFIX = "maintenance."
# (member path under the payload, message) for each problem; empty when the payload is fine
PayloadCheck = Callable[[Any], list[tuple[str, str]]]


def privileged_by_name(kind: str) -> bool:
    return kind.startswith(PRIVILEGED_PREFIX)


@dataclass(frozen=True, slots=True)
class KindRules:
    """The registered kinds; those that need the `admin` scope; payload checks and default queues by kind."""

    known: frozenset[str]
    privileged: frozenset[str] = frozenset()
    checks: Mapping[str, PayloadCheck] = field(default_factory=dict)
    queues: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def named(cls, kinds: Iterable[str]) -> KindRules:
        """Kinds without payload checks (tests, tools)."""
        return cls(frozenset(kinds))

    def is_privileged(self, kind: str) -> bool:
        return kind in self.privileged or privileged_by_name(kind)

    def queue_of(self, kind: str, default: str) -> str:
        """Where a job of `kind` goes when its submission names no queue: the kind's own queue, or `default`."""
        return self.queues.get(kind, default)

    def payload_errors(self, kind: str, payload: Any) -> list[tuple[str, str]]:
        check = self.checks.get(kind)
        return check(payload) if check is not None else []
