"""The URL table of the API (everything under /api/v1)."""

from __future__ import annotations

from aiohttp import web

from gleaner.services.gateway import (
    api_keys,
    dead_letters_api,
    events_api,
    jobs_api,
    kinds_api,
    openapi,
    queues_api,
    scheduler_api,
    schedules_api,
    sites_api,
    stats_api,
    webhooks_api,
    workers_api,
)

API = "/api/v1"
# ids in paths: only what can name a resource routes there, so `/jobs/batch` or `/dead-letters/requeue` never
# also matches `{id}` (its 405 would advertise the methods of `{id}`)
JOB = "{id:[0-9]+}"
LETTER = "{id:(?:job|message)-[0-9]+}"
# a schedule's id or its name (names are never all digits)
SCHEDULE = "{id:[A-Za-z0-9_.:-]{1,100}}"


def add_api_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{API}/openapi.json", openapi.serve)
    r.add_post(f"{API}/jobs", jobs_api.submit)
    r.add_get(f"{API}/jobs", jobs_api.list_jobs, allow_head=False)
    r.add_post(f"{API}/jobs/batch", jobs_api.submit_batch)
    r.add_get(f"{API}/jobs/{JOB}", jobs_api.get_job, allow_head=False)
    r.add_patch(f"{API}/jobs/{JOB}", jobs_api.change_job)
    r.add_get(f"{API}/jobs/{JOB}/attempts", jobs_api.list_attempts, allow_head=False)
    r.add_get(f"{API}/jobs/{JOB}/children", jobs_api.list_children, allow_head=False)
    r.add_get(f"{API}/jobs/{JOB}/dependencies", jobs_api.list_dependencies, allow_head=False)
    r.add_get(f"{API}/jobs/{JOB}/results", sites_api.list_results, allow_head=False)
    r.add_post(f"{API}/jobs/{JOB}/cancel", jobs_api.cancel_job)
    r.add_post(f"{API}/jobs/{JOB}/retry", jobs_api.retry_job)
    r.add_get(f"{API}/events", events_api.stream_events, allow_head=False)
    r.add_get(f"{API}/dead-letters", dead_letters_api.list_dead_letters, allow_head=False)
    r.add_post(f"{API}/dead-letters/requeue", dead_letters_api.bulk_requeue)
    r.add_post(f"{API}/dead-letters/{LETTER}/requeue", dead_letters_api.requeue_letter)
    r.add_post(f"{API}/dead-letters/{LETTER}/resolve", dead_letters_api.resolve_letter)
    r.add_delete(f"{API}/dead-letters/{LETTER}", dead_letters_api.delete_letter)
    r.add_get(f"{API}/queues", queues_api.list_queues, allow_head=False)
    r.add_post(f"{API}/queues/{{name}}/pause", queues_api.pause_queue)
    r.add_post(f"{API}/queues/{{name}}/resume", queues_api.resume_queue)
    r.add_get(f"{API}/workers", workers_api.list_workers, allow_head=False)
    r.add_get(f"{API}/kinds", kinds_api.list_kinds, allow_head=False)
    r.add_get(f"{API}/kinds/{{name}}", kinds_api.get_kind, allow_head=False)
    r.add_post(f"{API}/schedules", schedules_api.create_schedule)
    r.add_get(f"{API}/schedules", schedules_api.list_schedules, allow_head=False)
    r.add_get(f"{API}/schedules/{SCHEDULE}", schedules_api.get_schedule, allow_head=False)
    r.add_put(f"{API}/schedules/{SCHEDULE}", schedules_api.replace_schedule)
    r.add_patch(f"{API}/schedules/{SCHEDULE}", schedules_api.edit_schedule)
    r.add_delete(f"{API}/schedules/{SCHEDULE}", schedules_api.delete_schedule)
    r.add_post(f"{API}/schedules/{SCHEDULE}/pause", schedules_api.pause_schedule)
    r.add_post(f"{API}/schedules/{SCHEDULE}/resume", schedules_api.resume_schedule)
    r.add_post(f"{API}/schedules/{SCHEDULE}/trigger", schedules_api.trigger_schedule)
    r.add_get(f"{API}/schedules/{SCHEDULE}/preview", schedules_api.preview_schedule, allow_head=False)
    r.add_get(f"{API}/scheduler", scheduler_api.get_scheduler, allow_head=False)
    r.add_get(f"{API}/scheduler/config", scheduler_api.get_scheduler_config, allow_head=False)
    r.add_post(f"{API}/scheduler/pause", scheduler_api.pause_scheduler)
    r.add_post(f"{API}/scheduler/resume", scheduler_api.resume_scheduler)
    r.add_post(f"{API}/scheduler/run", scheduler_api.run_scheduler)
    r.add_get(f"{API}/stats", stats_api.get_stats, allow_head=False)
    r.add_get(f"{API}/reports", stats_api.get_report, allow_head=False)
    r.add_get(f"{API}/sites", sites_api.list_sites, allow_head=False)
    r.add_get(f"{API}/sites/{{name}}", sites_api.get_site, allow_head=False)
    r.add_put(f"{API}/sites/{{name}}", sites_api.put_site)
    r.add_post(f"{API}/webhooks", webhooks_api.create_webhook)
    r.add_get(f"{API}/webhooks", webhooks_api.list_webhooks, allow_head=False)
    r.add_delete(f"{API}/webhooks/{{id:[0-9]+}}", webhooks_api.delete_webhook)
    r.add_get(f"{API}/api-keys", api_keys.list_api_keys, allow_head=False)
    r.add_post(f"{API}/api-keys/{{id}}/revoke", api_keys.revoke_api_key)
