"""Gleaner's public Python API: `Client` and `AsyncClient` for programs that submit and watch jobs; `Registry`,
`JobContext` and the handler errors for modules that define job kinds (`gleaner.testing` runs them without services).

`gleaner.shared` and `gleaner.services` hold the services themselves (gateway, worker, scheduler, operator) and
their common code: they are internal, and may change in any release. Everything public is named here.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from gleaner.handlers import Handler, HandlerError, KindSpec, Partial, PermanentError, Registry, RetryableError
    from gleaner.inputs import (
        JobFilters,
        JobOptions,
        JobTemplate,
        ScheduleDefinition,
        ScheduleFields,
        SitePolicy,
        Submission,
    )
    from gleaner.job_context import (
        Database,
        HttpClient,
        HttpResponse,
        JobContext,
        JobInfo,
        JobSite,
        ResultStore,
        Row,
        StoredResult,
    )
    from gleaner.json_types import Json, JsonInput, JsonObject, JsonObjectInput
    from gleaner.models import (
        FINAL_STATES,
        ApiKey,
        Attempt,
        DeadLetter,
        Health,
        Job,
        Kind,
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
    "ApiKey",
    "AsyncClient",
    "Attempt",
    "BadRequest",
    "Client",
    "ClientError",
    "Conflict",
    "Database",
    "DeadLetter",
    "FieldError",
    "Forbidden",
    "Handler",
    "HandlerError",
    "Health",
    "HttpClient",
    "HttpResponse",
    "Job",
    "JobContext",
    "JobFilters",
    "JobInfo",
    "JobOptions",
    "JobSite",
    "JobTemplate",
    "Json",
    "JsonInput",
    "JsonObject",
    "JsonObjectInput",
    "Kind",
    "KindSpec",
    "NotFound",
    "Page",
    "Partial",
    "PermanentError",
    "Queue",
    "RateLimited",
    "Registry",
    "ResultStore",
    "RetryPolicy",
    "RetryableError",
    "Row",
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
    "StoredResult",
    "Submission",
    "Unauthorized",
    "UnexpectedResponse",
    "ValidationError",
    "WaitTimeout",
    "Worker",
    "Workers",
]

# Imported on first use (PEP 562), so a service importing `gleaner.shared` does not pay for the HTTP client.
_HOMES = {
    "ApiConnectionError": "gleaner.errors",
    "ApiError": "gleaner.errors",
    "ApiKey": "gleaner.models",
    "AsyncClient": "gleaner.async_client",
    "Attempt": "gleaner.models",
    "BadRequest": "gleaner.errors",
    "Client": "gleaner.client",
    "ClientError": "gleaner.errors",
    "Conflict": "gleaner.errors",
    "Database": "gleaner.job_context",
    "DeadLetter": "gleaner.models",
    "FINAL_STATES": "gleaner.models",
    "FieldError": "gleaner.errors",
    "Forbidden": "gleaner.errors",
    "Handler": "gleaner.handlers",
    "HandlerError": "gleaner.handlers",
    "Health": "gleaner.models",
    "HttpClient": "gleaner.job_context",
    "HttpResponse": "gleaner.job_context",
    "Job": "gleaner.models",
    "JobContext": "gleaner.job_context",
    "JobFilters": "gleaner.inputs",
    "JobInfo": "gleaner.job_context",
    "JobOptions": "gleaner.inputs",
    "JobSite": "gleaner.job_context",
    "JobTemplate": "gleaner.inputs",
    "Json": "gleaner.json_types",
    "JsonInput": "gleaner.json_types",
    "JsonObject": "gleaner.json_types",
    "JsonObjectInput": "gleaner.json_types",
    "Kind": "gleaner.models",
    "KindSpec": "gleaner.handlers",
    "NotFound": "gleaner.errors",
    "Page": "gleaner.models",
    "Partial": "gleaner.handlers",
    "PermanentError": "gleaner.handlers",
    "Queue": "gleaner.models",
    "RateLimited": "gleaner.errors",
    "Registry": "gleaner.handlers",
    "ResultStore": "gleaner.job_context",
    "RetryPolicy": "gleaner.retries",
    "RetryableError": "gleaner.handlers",
    "Row": "gleaner.job_context",
    "Schedule": "gleaner.models",
    "ScheduleDefinition": "gleaner.inputs",
    "ScheduleFields": "gleaner.inputs",
    "SchedulePreview": "gleaner.models",
    "SchedulerStatus": "gleaner.models",
    "ScrapeResult": "gleaner.models",
    "ServerError": "gleaner.errors",
    "Site": "gleaner.models",
    "SitePolicy": "gleaner.inputs",
    "Stats": "gleaner.models",
    "StoredResult": "gleaner.job_context",
    "Submission": "gleaner.inputs",
    "Unauthorized": "gleaner.errors",
    "UnexpectedResponse": "gleaner.errors",
    "ValidationError": "gleaner.errors",
    "WaitTimeout": "gleaner.errors",
    "Worker": "gleaner.models",
    "Workers": "gleaner.models",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'gleaner' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
