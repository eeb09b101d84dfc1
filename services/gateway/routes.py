"""The URL table of the API (everything under /api/v1)."""

from __future__ import annotations

from aiohttp import web

from services.gateway import dead_letters_api, jobs_api, openapi, queues_api

API = "/api/v1"


def add_api_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{API}/openapi.json", openapi.serve)
    r.add_post(f"{API}/jobs", jobs_api.submit)
    r.add_get(f"{API}/jobs", jobs_api.list_jobs, allow_head=False)
    r.add_post(f"{API}/jobs/batch", jobs_api.submit_batch)
    r.add_get(f"{API}/jobs/{{id}}", jobs_api.get_job, allow_head=False)
    r.add_get(f"{API}/jobs/{{id}}/attempts", jobs_api.list_attempts, allow_head=False)
    r.add_post(f"{API}/jobs/{{id}}/cancel", jobs_api.cancel_job)
    r.add_post(f"{API}/jobs/{{id}}/retry", jobs_api.retry_job)
    r.add_get(f"{API}/dead-letters", dead_letters_api.list_dead_letters, allow_head=False)
    r.add_post(f"{API}/dead-letters/requeue", dead_letters_api.bulk_requeue)
    r.add_post(f"{API}/dead-letters/{{id}}/requeue", dead_letters_api.requeue_letter)
    r.add_delete(f"{API}/dead-letters/{{id}}", dead_letters_api.delete_letter)
    r.add_get(f"{API}/queues", queues_api.list_queues, allow_head=False)
