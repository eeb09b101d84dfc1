"""The client and the API document agree: each model reads, and each request type offers, every field the
OpenAPI document describes (so a field the gateway adds shows up here until the client has it)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import pytest

from gleaner import AsyncClient, Client, async_client, client, inputs, models
from gleaner.services.gateway.openapi import document

DOCUMENT = document()
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
# fields a PUT /sites/{name} body may carry (so a GET body can be sent back) and that the gateway ignores
SITE_READ_ONLY = {"name", "state", "created_at", "updated_at"}


def model_fields(model: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(model) if f.name != "raw"}


def resolved(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def parameter(entry: dict[str, Any]) -> dict[str, Any]:
    """A parameter of an operation, given in place or by reference to the document's parameters."""
    return DOCUMENT["components"]["parameters"][entry["$ref"].rsplit("/", 1)[-1]] if "$ref" in entry else entry


def properties(schema: dict[str, Any]) -> set[str]:
    """The members an object schema describes; of a choice (a dead letter's two shapes, a nullable object), all."""
    schema = resolved(schema)
    if "properties" in schema:
        return set(schema["properties"])
    branches = [resolved(branch) for branch in schema.get("anyOf", []) + schema.get("oneOf", [])]
    return set().union(*(properties(branch) for branch in branches if branch.get("type") != "null"))


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (models.Job, SCHEMAS["Job"]),
        (models.Attempt, SCHEMAS["Attempt"]),
        (models.ScrapeResult, SCHEMAS["ScrapeResult"]),
        (models.DeadLetter, SCHEMAS["DeadLetter"]),
        (models.Queue, SCHEMAS["Queue"]),
        (models.PriorityBands, SCHEMAS["PriorityBands"]),
        (models.Worker, SCHEMAS["Worker"]),
        (models.Kind, SCHEMAS["Kind"]),
        (models.ApiKey, SCHEMAS["ApiKey"]),
        (models.Site, SCHEMAS["Site"]),
        (models.SiteState, SCHEMAS["Site"]["properties"]["state"]),
        (models.Schedule, SCHEMAS["Schedule"]),
        (models.ScheduleCounters, SCHEMAS["Schedule"]["properties"]["counters"]),
        (models.LastJob, SCHEMAS["Schedule"]["properties"]["last_job"]),
        # one model for GET /scheduler and POST /scheduler/run (which adds `fired`)
        (models.SchedulerStatus, SCHEMAS["SchedulerRun"]),
        (models.SchedulerConfig, SCHEMAS["SchedulerConfig"]),
        (models.Stats, SCHEMAS["Stats"]),
        (models.Report, SCHEMAS["Report"]),
        (models.ReportGroup, SCHEMAS["Report"]["properties"]["groups"]["items"]),
        (models.ErrorClassCount, SCHEMAS["ErrorClassCount"]),
        (models.ReportDeadLetters, SCHEMAS["Report"]["properties"]["dead_letters"]),
        (models.StatsGroup, SCHEMAS["Stats"]["properties"]["groups"]["items"]),
        (models.SiteCounters, SCHEMAS["Stats"]["properties"]["sites"]["items"]),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_each_model_reads_every_field_the_document_describes(model: type[Any], schema: dict[str, Any]) -> None:
    assert model_fields(model) == properties(schema)


@pytest.mark.parametrize(
    ("typed", "fields"),
    [
        (inputs.Submission, properties(SCHEMAS["Submission"])),
        (inputs.JobChange, properties(SCHEMAS["JobChange"])),
        (inputs.JobTemplate, properties(SCHEMAS["JobTemplate"])),
        (inputs.ScheduleDefinition, properties(SCHEMAS["ScheduleDefinition"])),
        (inputs.ScheduleFields, properties(SCHEMAS["ScheduleDefinition"])),
        (inputs.SitePolicy, properties(SCHEMAS["SitePolicy"]) - SITE_READ_ONLY),
        (inputs.RespectfulHours, properties(SCHEMAS["Site"]["properties"]["respectful_hours"])),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_each_request_type_offers_every_field_the_document_describes(typed: Any, fields: set[str]) -> None:
    assert typed.__required_keys__ | typed.__optional_keys__ == fields


def test_the_job_filters_are_the_list_parameters_of_the_document() -> None:
    parameters = {parameter(p)["name"] for p in DOCUMENT["paths"]["/jobs"]["get"]["parameters"]}
    assert set(inputs.JobFilters.__optional_keys__) == parameters - {"page_size", "page_token"}


# every documented route and the client method that calls it
ROUTES = {
    ("post", "/jobs"): "jobs.submit",
    ("post", "/jobs/batch"): "jobs.submit_many",
    ("get", "/jobs"): "jobs.list",
    ("get", "/jobs/{id}"): "jobs.get",
    ("post", "/jobs/{id}/cancel"): "jobs.cancel",
    ("post", "/jobs/{id}/retry"): "jobs.retry",
    ("patch", "/jobs/{id}"): "jobs.change",
    ("get", "/jobs/{id}/attempts"): "jobs.attempts",
    ("get", "/jobs/{id}/results"): "jobs.results",
    ("get", "/jobs/{id}/children"): "jobs.children",
    ("get", "/jobs/{id}/dependencies"): "jobs.dependencies",
    ("get", "/dead-letters"): "dead_letters.list",
    ("post", "/dead-letters/{id}/requeue"): "dead_letters.requeue",
    ("post", "/dead-letters/requeue"): "dead_letters.requeue_many",
    ("post", "/dead-letters/{id}/resolve"): "dead_letters.resolve",
    ("delete", "/dead-letters/{id}"): "dead_letters.delete",
    ("get", "/schedules"): "schedules.list",
    ("post", "/schedules"): "schedules.create",
    ("get", "/schedules/{id}"): "schedules.get",
    ("put", "/schedules/{id}"): "schedules.replace",
    ("patch", "/schedules/{id}"): "schedules.update",
    ("delete", "/schedules/{id}"): "schedules.delete",
    ("post", "/schedules/{id}/pause"): "schedules.pause",
    ("post", "/schedules/{id}/resume"): "schedules.resume",
    ("post", "/schedules/{id}/trigger"): "schedules.trigger",
    ("get", "/schedules/{id}/preview"): "schedules.preview",
    ("get", "/scheduler"): "scheduler.status",
    ("get", "/scheduler/config"): "scheduler.config",
    ("post", "/scheduler/pause"): "scheduler.pause",
    ("post", "/scheduler/resume"): "scheduler.resume",
    ("post", "/scheduler/run"): "scheduler.run",
    ("get", "/sites"): "sites.list",
    ("get", "/sites/{name}"): "sites.get",
    ("put", "/sites/{name}"): "sites.put",
    ("get", "/queues"): "queues.list",
    ("post", "/queues/{name}/pause"): "queues.pause",
    ("post", "/queues/{name}/resume"): "queues.resume",
    ("get", "/workers"): "workers",
    ("get", "/kinds"): "kinds",
    ("get", "/kinds/{name}"): "kind",
    ("get", "/stats"): "stats",
    ("get", "/reports"): "report",
    ("get", "/api-keys"): "api_keys",
    ("post", "/api-keys/{id}/revoke"): "revoke_api_key",
    ("get", "/events"): "events",
    ("get", "/webhooks"): "webhooks",
    ("post", "/webhooks"): "create_webhook",
    ("delete", "/webhooks/{id}"): "delete_webhook",
}
# documented routes the client leaves to `client.request` on purpose
NOT_IN_CLIENT = {("get", "/openapi.json")}
RESOURCES = ["jobs", "dead_letters", "schedules", "scheduler", "sites", "queues"]


def documented_routes() -> set[tuple[str, str]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {(method, path) for path, item in DOCUMENT["paths"].items() for method in item if method in methods}


def test_every_documented_route_has_a_method_on_both_clients() -> None:
    assert set(ROUTES) | NOT_IN_CLIENT == documented_routes()
    for instance in (Client("http://127.0.0.1:9/api/v1"), AsyncClient("http://127.0.0.1:9/api/v1")):
        missing = [dotted for dotted in ROUTES.values() if not callable(attribute(instance, dotted))]
        assert missing == [], type(instance).__name__


def attribute(obj: object, dotted: str) -> object:
    return functools.reduce(lambda owner, name: getattr(owner, name, None), dotted.split("."), obj)


def public_methods(cls: type[Any]) -> dict[str, inspect.Signature]:
    return {n: inspect.signature(m) for n, m in vars(cls).items() if inspect.isfunction(m) and not n.startswith("_")}


@pytest.mark.parametrize("resource", ["", *RESOURCES])
def test_both_clients_have_the_same_methods_with_the_same_parameters(resource: str) -> None:
    sync_cls = getattr(client, resource.title().replace("_", "")) if resource else Client
    async_cls = getattr(async_client, "Async" + resource.title().replace("_", "")) if resource else AsyncClient
    sync, asynchronous = public_methods(sync_cls), public_methods(async_cls)
    assert set(sync) == set(asynchronous)
    assert all(list(sync[n].parameters) == list(asynchronous[n].parameters) for n in sync)
