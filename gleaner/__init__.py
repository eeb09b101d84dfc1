"""Gleaner's public Python API: `Client` and `AsyncClient` for programs that submit and watch jobs.

`gleaner.shared` and `gleaner.services` hold the services themselves (gateway, worker, scheduler, operator) and
their common code: they are internal, and may change in any release. Everything public is named here.
"""

from gleaner.async_client import AsyncClient
from gleaner.client import Client
from gleaner.errors import (
    ApiConnectionError,
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    ValidationError,
    WaitTimeout,
)
from gleaner.inputs import (
    JobFilters,
    JobOptions,
    JobTemplate,
    ScheduleDefinition,
    ScheduleFields,
    SitePolicy,
    Submission,
)
from gleaner.json_types import Json, JsonInput, JsonObject, JsonObjectInput
from gleaner.models import (
    FINAL_STATES,
    Attempt,
    DeadLetter,
    Health,
    Job,
    Page,
    Queue,
    Schedule,
    SchedulePreview,
    SchedulerStatus,
    ScrapeResult,
    Site,
    Stats,
    Worker,
    Workers,
)
from gleaner.retries import RetryPolicy

__all__ = [
    "FINAL_STATES",
    "ApiConnectionError",
    "ApiError",
    "AsyncClient",
    "Attempt",
    "BadRequest",
    "Client",
    "ClientError",
    "Conflict",
    "DeadLetter",
    "FieldError",
    "Forbidden",
    "Health",
    "Job",
    "JobFilters",
    "JobOptions",
    "JobTemplate",
    "Json",
    "JsonInput",
    "JsonObject",
    "JsonObjectInput",
    "NotFound",
    "Page",
    "Queue",
    "RateLimited",
    "RetryPolicy",
    "Schedule",
    "ScheduleDefinition",
    "ScheduleFields",
    "SchedulePreview",
    "SchedulerStatus",
    "ScrapeResult",
    "ServerError",
    "Site",
    "SitePolicy",
    "Stats",
    "Submission",
    "Unauthorized",
    "UnexpectedResponse",
    "ValidationError",
    "WaitTimeout",
    "Worker",
    "Workers",
]
