"""deploy/rabbitmq/definitions.json: one least-privilege user per service on the gleaner vhost."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.ops.tools import DEPLOY

DEFINITIONS = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
VHOST = "gleaner"
WORK_QUEUE = "gleaner.q.scraping"
EXCHANGES = ("gleaner.jobs", "gleaner.dlx", "gleaner.events", "gleaner.delay.1000ms16.L3")
TOPOLOGY = (*EXCHANGES, WORK_QUEUE, "gleaner.dead", "gleaner.delay.1000ms16.deliver")
SERVICES = ("gleaner-gateway", "gleaner-worker", "gleaner-scheduler")
# the exclusive queue of an event listener (gateway: job.finished, worker: job.cancel), named by aio-pika
LISTENER_QUEUE = "amq_0123456789abcdef0123456789abcdef"
PUBLISHED = ("gleaner.jobs", "gleaner.events", "gleaner.delay.1000ms16.L15")


def _permission(user: str) -> dict[str, Any]:
    matches = [p for p in DEFINITIONS["permissions"] if p["user"] == user and p["vhost"] == VHOST]
    assert len(matches) == 1, user
    return dict(matches[0])


def _allows(user: str, access: str, resource: str) -> bool:
    return re.fullmatch(_permission(user)[access], resource) is not None


def test_each_service_has_its_own_user_and_none_is_an_administrator() -> None:
    users = {u["name"]: u for u in DEFINITIONS["users"]}
    for service in ("worker", "scheduler", "migrate"):
        assert users[f"gleaner-{service}"]["tags"] == [], service
    # GET /queues reads the unacked counts from the management API: `management` sees only its own vhosts
    assert users["gleaner-gateway"]["tags"] == ["management"]
    assert VHOST in {v["name"] for v in DEFINITIONS["vhosts"]}


def test_only_the_migrate_user_may_declare_bind_or_delete_the_topology() -> None:
    for resource in TOPOLOGY:
        assert all(_allows("gleaner-migrate", access, resource) for access in ("configure", "write", "read"))
        for user in SERVICES:
            assert not _allows(user, "configure", resource), (user, resource)


def test_services_publish_where_they_must_and_listen_on_their_own_exclusive_queues() -> None:
    for user in SERVICES:
        assert all(_allows(user, "write", exchange) for exchange in PUBLISHED), user
    # the dead-letter exchange takes the broker's rejects; only a worker publishes into it, a failed job's own copy
    # out of a group (the rest of the group is acked, not copied)
    assert _allows("gleaner-worker", "write", "gleaner.dlx")
    assert not any(_allows(user, "write", "gleaner.dlx") for user in ("gleaner-gateway", "gleaner-scheduler"))
    for user in ("gleaner-gateway", "gleaner-worker"):
        for access in ("configure", "write", "read"):
            assert _allows(user, access, LISTENER_QUEUE), (user, access)
        assert _allows(user, "read", "gleaner.events"), user  # to bind the listener queue
    assert not _allows("gleaner-scheduler", "configure", LISTENER_QUEUE)
    assert _permission("gleaner-scheduler")["read"] == "^$"


def test_only_workers_may_consume_the_work_queues() -> None:
    assert _allows("gleaner-worker", "read", WORK_QUEUE)
    assert not _allows("gleaner-gateway", "read", WORK_QUEUE)
    assert not _allows("gleaner-scheduler", "read", WORK_QUEUE)


def test_no_service_may_touch_another_namespace_or_the_default_exchange_objects() -> None:
    for user in (*SERVICES, "gleaner-migrate"):
        for access in ("configure", "write", "read"):
            assert not _allows(user, access, "other.q.default"), (user, access)


def test_the_monitoring_user_has_no_access_to_messages() -> None:
    permission = _permission("gleaner-monitoring")
    assert (permission["configure"], permission["write"], permission["read"]) == ("^$", "^$", "^$")
