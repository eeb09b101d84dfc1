#!/usr/bin/env bash
# Run gateway, scheduler and worker in the foreground; Ctrl-C, SIGTERM or the end of the parent (make) stops
# all three gracefully.
set -euo pipefail
bin="${VENV:-.venv}/bin"
pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait || true; }
trap stop INT TERM EXIT
"$bin/gleaner" gateway & pids+=($!)
"$bin/gleaner" scheduler & pids+=($!)
"$bin/gleaner" worker & pids+=($!)
# make does not pass its own SIGTERM on (`timeout 60 make run`): stop with whoever started this script
parent=$PPID
( while kill -0 "$parent" 2>/dev/null; do sleep 1; done; kill -TERM $$ 2>/dev/null ) & pids+=($!)
echo "gateway on http://${GLEANER_HTTP_HOST:-127.0.0.1}:8080 (admin token: \$GLEANER_ADMIN_TOKEN), worker :8081, scheduler :8082"
echo "console: http://${GLEANER_HTTP_HOST:-127.0.0.1}:8080/console/ (sign in with an API key or \$GLEANER_ADMIN_TOKEN)"
wait -n
