"""The worker's per-job log lines: one INFO line when an attempt starts and one when it ends, with the fields an
operator filters on (seed 000's correlated JSON logs); DEBUG adds the claim's and the outcome's details."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from gleaner.job_context import JobInfo
from gleaner.services.worker.retry import Outcome

log = logging.getLogger("gleaner.worker.jobs")

MAX_DEBUG_PAYLOAD = 2000


def _fields(job: JobInfo) -> dict[str, Any]:
    return {"job_id": job.id, "kind": job.kind, "queue": job.queue, "site": job.site, "attempt": job.attempt}


def enabled() -> bool:
    """Whether the start and end lines are written (INFO): the worker asks once per job."""
    return log.isEnabledFor(logging.INFO)


def started(job: JobInfo, wait_s: float) -> None:
    """`job started`: kind, id, attempt, queue, site (and at DEBUG the limits, the wait and the payload)."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields = _fields(job)
    if log.isEnabledFor(logging.DEBUG):
        payload = orjson.dumps(job.payload, default=str).decode()
        fields |= {
            "max_attempts": job.max_attempts,
            "timeout_s": job.timeout_s,
            "soft_timeout_s": job.soft_timeout_s,
            "queue_wait_s": round(wait_s, 6),
            "payload": payload if len(payload) <= MAX_DEBUG_PAYLOAD else payload[:MAX_DEBUG_PAYLOAD] + "…",
        }
    log.info("job started", extra=fields)


def ended(job: JobInfo, outcome: Outcome, duration_s: float) -> None:
    """`job ended`: the start line's fields plus duration, outcome and error class (at DEBUG the error message, the
    retry delay and the result's size)."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields = _fields(job) | {
        "duration_s": round(duration_s, 6),
        "outcome": outcome.state,
        "error_class": outcome.error_class,
    }
    if log.isEnabledFor(logging.DEBUG):
        fields |= {
            "error_message": outcome.error_message,
            "retry_delay_s": outcome.retry_delay_s,
            "result_bytes": None if outcome.result_json is None else len(outcome.result_json),
        }
    log.info("job ended", extra=fields)
