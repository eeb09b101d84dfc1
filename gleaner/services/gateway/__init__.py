"""The gateway: Gleaner's HTTP API."""
