"""Operator commands of the `gleaner` CLI: a thin client of the gateway's HTTP API."""
