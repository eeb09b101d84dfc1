#!/usr/bin/env bash
# Run gateway, scheduler and worker in the foreground; Ctrl-C (or SIGTERM) stops all three gracefully.
set -euo pipefail
bin="${VENV:-.venv}/bin"
pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait || true; }
trap stop INT TERM EXIT
"$bin/gleaner" gateway & pids+=($!)
"$bin/gleaner" scheduler & pids+=($!)
"$bin/gleaner" worker & pids+=($!)
echo "gateway on http://${GLEANER_HTTP_HOST:-127.0.0.1}:8080 (admin token: \$GLEANER_ADMIN_TOKEN), worker :8081, scheduler :8082"
wait -n
