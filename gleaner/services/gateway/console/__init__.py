"""The web console: server-rendered pages at /console/, a client of the gateway's own API."""
