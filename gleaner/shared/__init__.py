"""Gleaner's common package: configuration, wire format, topology, database and observability."""
