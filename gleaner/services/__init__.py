"""Gleaner's three services and the `gleaner` command line."""
