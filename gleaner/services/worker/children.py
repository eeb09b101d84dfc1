"""`ctx.submit` in the worker: a handler's child jobs, checked like API submissions, written fenced on the attempt."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from gleaner.handlers import PermanentError, RetryableError
from gleaner.job_context import ChildJob, JobInfo
from gleaner.shared import workflows
from gleaner.shared.config import Config
from gleaner.shared.kind_rules import KindRules
from gleaner.shared.kind_table import read_rules
from gleaner.shared.submission import JobSpec, parse_job
from gleaner.shared.urlguard import Policy

KINDS_FRESH_S = 5.0
MAX_CHILDREN = 1000
CHILD_KEY_LENGTH = 200


@dataclass(slots=True)
class KindCache:
    """The `kinds` table as rules, read again when older than KINDS_FRESH_S or when a kind is unknown."""

    pool: asyncpg.Pool
    config: Config
    _rules: KindRules | None = None
    _read_at: float = 0.0

    async def knowing(self, kinds: set[str]) -> KindRules:
        stale = time.monotonic() - self._read_at > KINDS_FRESH_S
        if self._rules is None or stale or not kinds <= self._rules.known:
            policy = Policy.configured(self.config.fetch_allow_private)
            async with self.pool.acquire() as connection:
                self._rules = await read_rules(connection, self.config.queues, policy)
            self._read_at = time.monotonic()
        return self._rules


@dataclass(slots=True)
class ChildWriter:
    """One attempt's `ChildJobs`: counts the children submitted without a key, for their positional keys."""

    pool: asyncpg.Pool
    config: Config
    kinds: KindCache
    job: JobInfo
    owner: str
    _positions: int = field(default=0)

    async def submit(self, jobs: Sequence[ChildJob]) -> list[int]:
        if len(jobs) > MAX_CHILDREN:
            raise PermanentError(f"at most {MAX_CHILDREN} child jobs at once")
        rules = await self.kinds.knowing({job.kind for job in jobs})
        specs = [self._checked(job, index, rules) for index, job in enumerate(jobs)]
        keys = [self._key(job) for job in jobs]
        parent = workflows.Parent(self.job.id, self.job.attempt, self.owner, self.job.request_id)
        try:
            return await workflows.insert_children(self.pool, parent, specs, keys)
        except workflows.StaleParent as exc:
            # this attempt lost its lease: whatever it does next is dropped by the fence too
            raise RetryableError(str(exc)) from None

    def _checked(self, job: ChildJob, index: int, rules: KindRules) -> JobSpec:
        if rules.is_privileged(job.kind) and not rules.is_privileged(self.job.kind):
            raise PermanentError(f"child job {index}: kind {job.kind!r} needs the `admin` scope")
        spec, errors = parse_job(_body(job), self.config, f"jobs[{index}].", rules)
        if spec is None:
            problems = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            raise PermanentError(f"invalid child job: {problems}")
        return spec

    def _key(self, job: ChildJob) -> str:
        if job.key is not None:
            if not 1 <= len(job.key) <= CHILD_KEY_LENGTH or "\x00" in job.key:
                raise PermanentError(f"a child key is 1-{CHILD_KEY_LENGTH} characters")
            return job.key
        key = f"#{self._positions}"
        self._positions += 1
        return key


def _body(job: ChildJob) -> dict[str, Any]:
    """The child as a submission body (what the API would receive), so it gets the same checks."""
    fields = {
        "kind": job.kind,
        "payload": dict(job.payload) if job.payload is not None else None,
        "queue": job.queue,
        "priority": job.priority,
        "max_attempts": job.max_attempts,
        "timeout_s": job.timeout_s,
        "delay_s": job.delay_s,
        "site": job.site,
    }
    return {name: value for name, value in fields.items() if value is not None}
