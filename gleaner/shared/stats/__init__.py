"""Jobs by site and kind over a window (GET /stats) and the report built on them (GET /reports, maintenance.report):
the statements and the pure shaping, shared by the gateway and the worker."""
