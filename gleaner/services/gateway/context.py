"""What request handlers need from the running gateway, under one app key."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from gleaner.services.gateway.announcer import Announcer
from gleaner.services.gateway.event_hub import EventHub
from gleaner.services.gateway.insert_lanes import InsertLanes
from gleaner.services.gateway.kind_book import KindBook
from gleaner.services.gateway.pagination import PageTokens
from gleaner.services.gateway.queue_depths import QueueDepths
from gleaner.services.gateway.waiting import Waiters
from gleaner.services.gateway.webhook_fanout import WebhookFanout
from gleaner.shared.amqp import Broker
from gleaner.shared.config import Config
from gleaner.shared.metrics import Metrics
from gleaner.shared.publisher import Publisher
from gleaner.shared.submission import LatestChecks


@dataclass(slots=True)
class Gateway:
    config: Config
    metrics: Metrics
    pool: asyncpg.Pool
    broker: Broker
    inserts: InsertLanes
    publisher: Publisher
    announcer: Announcer
    waiters: Waiters
    events: EventHub
    webhooks: WebhookFanout
    kinds: KindBook
    page_tokens: PageTokens
    depths: QueueDepths
    checks: LatestChecks


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def gateway_of(request: web.Request) -> Gateway:
    return request.app[GATEWAY_KEY]
