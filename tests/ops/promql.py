"""Metric names in PromQL expressions, and the names Gleaner, RabbitMQ and Prometheus actually export."""

from __future__ import annotations

import re
from functools import cache

from prometheus_client.metrics_core import Metric

from gleaner.shared.metrics import Metrics
from tests.ops.tools import DEPLOY

# Exported by RabbitMQ's rabbitmq_prometheus (/metrics/per-object) and by Prometheus itself.
EXTERNAL = frozenset(
    {
        "up",
        "rabbitmq_queue_messages_ready",
        "rabbitmq_queue_messages_unacked",
        "rabbitmq_queue_consumers",
    }
)
PENDING_FILE = DEPLOY / "metrics-pending.txt"

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "offset"}
    | {"inf", "nan", "atan2"}
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[\w$]+")
_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{[^}]*\})?\s*,")


def without_strings(expr: str) -> str:
    """The expression with every string literal emptied (regexes in matchers hold brackets and braces)."""
    return _STRINGS.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression selects (identifiers that are not functions, keywords or labels)."""
    text = without_strings(expr)
    for pattern in (_MATCHERS, _RANGES, _GROUPING, _OFFSET, _VARIABLES):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.groups()
        if not call and name not in _KEYWORDS:
            names.add(name)
    return names


def variable_metric_names(query: str) -> set[str]:
    """The metric of a Grafana `label_values(metric, label)` variable query."""
    return set(_LABEL_VALUES.findall(query))


def _samples(family: Metric) -> set[str]:
    name = family.name
    if family.type == "counter":
        return {f"{name}_total"}
    if family.type == "histogram":
        return {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    if family.type == "info":
        return {f"{name}_info"}
    return {name}


@cache
def gleaner_names() -> frozenset[str]:
    """Every sample name a Gleaner service can export, from the real registry."""
    registry = Metrics("ops-test").registry
    return frozenset(n for family in registry.collect() for n in _samples(family))


@cache
def pending_names() -> dict[str, str]:
    """Names used before the code exports them: `name  issue-reference` lines of deploy/metrics-pending.txt."""
    pending = {}
    for line in PENDING_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, note = line.partition(" ")
            pending[name] = note.strip()
    return pending


def unknown_names(names: set[str]) -> set[str]:
    return names - gleaner_names() - EXTERNAL - set(pending_names())
