"""The payload schemas built-in kinds register are the ones the OpenAPI document describes (`*Payload`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gleaner.services.worker.handlers import builtin_registry
from gleaner.shared.config import Config

DOCUMENT = json.loads((Path(__file__).parents[2] / "gleaner/services/gateway/openapi.json").read_text())
DOCUMENTED = {
    "sleep": "SleepPayload",
    "fail": "FailPayload",
    "http.fetch": "HttpFetchPayload",
    "scrape.pages": "ScrapePagesPayload",
    "maintenance.prune": "PrunePayload",
    "maintenance.prune_results": "PruneResultsPayload",
    "maintenance.analyze": "AnalyzePayload",
    "maintenance.requeue_failed": "RequeueFailedPayload",
    "maintenance.report": "ReportPayload",
    "webhook.deliver": "WebhookDeliverPayload",
}
# what decides acceptance (descriptions, defaults and the document's NUL rules aside)
RULES = ("type", "enum", "minimum", "maximum", "minItems", "maxItems", "minLength")


def essence(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    return {
        "required": sorted(schema.get("required", [])),
        "closed": schema.get("additionalProperties") is False,
        "properties": {name: {rule: p[rule] for rule in RULES if rule in p} for name, p in properties.items()},
        "items": {rule: v for rule, v in properties.get("urls", {}).get("items", {}).items() if rule in RULES},
    }


@pytest.mark.parametrize(("kind", "name"), sorted(DOCUMENTED.items()))
def test_a_built_in_kind_registers_the_payload_schema_the_document_describes(kind: str, name: str) -> None:
    registered = builtin_registry(Config()).get(kind).schema
    assert registered is not None
    assert essence(dict(registered)) == essence(DOCUMENT["components"]["schemas"][name])
