"""Webhook deliveries on the wire: the kind, the headers, and the HMAC-SHA256 signature (pure).

A delivery POSTs one event as JSON with `Gleaner-Timestamp: <unix seconds>` and
`Gleaner-Signature: v1=<hex HMAC-SHA256 of "<timestamp>." + body, keyed with the webhook's secret>`; a receiver
recomputes it over the raw body, compares in constant time and refuses old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac

from gleaner.shared.events import Event

KIND = "webhook.deliver"
TIMESTAMP_HEADER = "Gleaner-Timestamp"
SIGNATURE_HEADER = "Gleaner-Signature"
EVENT_HEADER = "Gleaner-Event"
DELIVERY_HEADER = "Gleaner-Delivery"
VERSION = "v1"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def verify(secret: str, timestamp: str, signed: str, body: bytes, now_s: float, tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does (the README shows it without this module)."""
    if not timestamp.isdigit() or abs(now_s - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), signed)


def event_key(event: Event) -> str:
    """The same event seen by every gateway replica has the same key (a delivery is inserted once per webhook)."""
    return f"{event['type']}|{event['job_id']}|{event['attempt']}|{event['schedule_id']}|{event['at']}"
