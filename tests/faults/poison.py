"""Poison messages, published straight to a work queue: each must become one dead letter, and stay one."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
import orjson

NO_SUCH_JOB = 10**12  # far beyond any id a scenario's database hands out
NAMES = ("non_json", "wrong_schema", "no_such_job", "id_out_of_range", "attempt_out_of_range", "nul_in_header")


@dataclass(frozen=True, slots=True)
class Poison:
    """One bad message; `marker` is in its body, so its dead letter can be found."""

    name: str
    marker: str
    body: bytes
    headers: dict[str, Any]


def poisons(copy: int) -> list[Poison]:
    """The issue's poison kinds: not JSON, wrong schema, unknown job, ids out of range, NUL in a header."""
    made = []
    for name in NAMES:
        marker = f"poison-{name}-{copy}"
        body, headers = _variant(name, marker, copy)
        made.append(Poison(name, marker, body, headers))
    return made


def _variant(name: str, marker: str, copy: int) -> tuple[bytes, dict[str, Any]]:
    # a well-formed envelope (unknown fields are ignored) for a job that does not exist
    envelope = {"v": 1, "id": NO_SUCH_JOB + copy, "attempt": 1, "queue": "default", "kind": "record.noop"}
    envelope["marker"] = marker
    variants: dict[str, tuple[bytes, dict[str, Any]]] = {
        "non_json": (f"\x00 not json {marker}".encode(), {}),
        "wrong_schema": (orjson.dumps({"v": 1, "id": "seven", "marker": marker}), {}),
        "no_such_job": (orjson.dumps(envelope), {}),
        "id_out_of_range": (orjson.dumps({**envelope, "id": 2**63}), {}),
        "attempt_out_of_range": (orjson.dumps({**envelope, "attempt": 2**31}), {}),
        "nul_in_header": (f"not json {marker}".encode(), {"note": "a\x00b"}),
    }
    return variants[name]


async def publish(amqp_url: str, queue: str, messages: Iterable[Poison]) -> None:
    """Publish straight to the work queue (default exchange), as a buggy or hostile producer would."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for poison in messages:
            message = aio_pika.Message(poison.body, headers=poison.headers or None)
            await channel.default_exchange.publish(message, routing_key=queue)
    finally:
        await connection.close()


def letters_by_marker(letters: Iterable[dict[str, Any]], markers: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """GET /dead-letters entries grouped by the poison marker their raw body carries."""
    found: dict[str, list[dict[str, Any]]] = {marker: [] for marker in markers}
    for letter in letters:
        body = base64.b64decode(letter.get("body_base64") or "")
        for marker in found:
            if marker.encode() in body:
                found[marker].append(letter)
    return found
