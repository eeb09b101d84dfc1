"""A throwaway RabbitMQ vhost holding the users and permissions of deploy/rabbitmq/definitions.json."""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from tests.support.contract import checked_session
from tests.support.services import AMQP_URL, unique

# the management API of the test broker, as its administrator (guest has the administrator tag)
BROKER = URL(AMQP_URL)
MANAGEMENT_API = os.environ.get("GLEANER_TEST_RABBITMQ_API", f"http://{BROKER.host}:15672/api")
DEFINITIONS = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "definitions.json"
DEFINED_VHOST = "gleaner"


@dataclass(frozen=True, slots=True)
class Accounts:
    """The vhost and, per service (`migrate`, `gateway`, …), the user made from its `gleaner-<service>` entry."""

    vhost: str
    passwords: dict[str, str]

    def user(self, service: str) -> str:
        return f"{self.vhost}-{service}"

    def amqp_url(self, service: str) -> str:
        vhost = quote(self.vhost, safe="")
        return f"amqp://{self.user(service)}:{self.passwords[service]}@{BROKER.host}:{BROKER.port}/{vhost}"


def _defined(service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user entry and the permission entry of `gleaner-<service>` in definitions.json."""
    definitions = json.loads(DEFINITIONS.read_text())
    name = f"gleaner-{service}"
    user = next(u for u in definitions["users"] if u["name"] == name)
    permission = next(p for p in definitions["permissions"] if p["user"] == name and p["vhost"] == DEFINED_VHOST)
    return user, permission


def _session() -> aiohttp.ClientSession:
    credentials = base64.b64encode(f"{BROKER.user}:{BROKER.password}".encode()).decode()
    return checked_session(headers={"Authorization": f"Basic {credentials}"})


async def _call(session: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> Any:
    async with session.request(method, f"{MANAGEMENT_API}{path}", json=body) as response:
        assert response.status < 300, (method, path, response.status, await response.text())
        return await response.json() if response.status == 200 else None


@asynccontextmanager
async def defined_accounts(services: tuple[str, ...]) -> AsyncIterator[Accounts]:
    """Create a vhost and one user per service with the defined tags and permissions; delete them after."""
    accounts = Accounts(unique("gleaner-t-"), {service: secrets.token_hex(12) for service in services})
    vhost = quote(accounts.vhost, safe="")
    async with _session() as session:
        await _call(session, "PUT", f"/vhosts/{vhost}")
        try:
            for service in services:
                user, permission = _defined(service)
                name = quote(accounts.user(service), safe="")
                account = {"password": accounts.passwords[service], "tags": ",".join(user["tags"])}
                await _call(session, "PUT", f"/users/{name}", account)
                access = {key: permission[key] for key in ("configure", "write", "read")}
                await _call(session, "PUT", f"/permissions/{vhost}/{name}", access)
            yield accounts
        finally:
            for service in services:
                await _call(session, "DELETE", f"/users/{quote(accounts.user(service), safe='')}")
            await _call(session, "DELETE", f"/vhosts/{vhost}")


async def declared_objects(vhost: str) -> tuple[set[str], set[str]]:
    """The exchanges (without the built-in `amq.*` and default ones) and the queues of a vhost."""
    async with _session() as session:
        exchanges = await _call(session, "GET", f"/exchanges/{quote(vhost, safe='')}?columns=name")
        queues = await _call(session, "GET", f"/queues/{quote(vhost, safe='')}?columns=name")
    names = {e["name"] for e in exchanges if e["name"] and not e["name"].startswith("amq.")}
    return names, {q["name"] for q in queues}
