#!/usr/bin/env bash
# Run gateway, scheduler and worker in the foreground; Ctrl-C, SIGTERM or the end of the parent (make) stops
# all three gracefully. The worker is supervised: when it exits 0 (it recycled itself: GLEANER_WORKER_MAX_JOBS,
# GLEANER_WORKER_MAX_RSS_MB) or crashes, a fresh one starts; exit code 2 (a setting or setup mistake that a
# restart cannot fix) stops the stack. RUN_GATEWAY_PORT, RUN_WORKER_PORT and RUN_SCHEDULER_PORT move the services
# (tests run a whole stack on private ports).
set -euo pipefail
bin="${VENV:-.venv}/bin"
host="${GLEANER_HTTP_HOST:-127.0.0.1}"
gateway_port="${RUN_GATEWAY_PORT:-8080}"
worker_port="${RUN_WORKER_PORT:-8081}"
scheduler_port="${RUN_SCHEDULER_PORT:-8082}"
probe_host="$host"
case "$probe_host" in 0.0.0.0 | :: | "") probe_host=127.0.0.1 ;; esac
# a second `make run` while one runs: say so once, before starting anything (each service would refuse its port too,
# but the first to fail might not be the gateway, and this stack's banner must never describe the other one)
for port in "$gateway_port" "$worker_port" "$scheduler_port"; do
    if (exec 3<>"/dev/tcp/$probe_host/$port") 2>/dev/null; then
        echo "make run: port $port on $probe_host is in use: is another \`make run\` running? Stop it, or free the port" >&2
        exit 2
    fi
done
pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait || true; }
trap stop INT TERM EXIT

supervise_worker() {
    local child code
    trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' INT TERM
    while true; do
        GLEANER_HTTP_PORT="$worker_port" "$bin/gleaner" worker &
        child=$!
        code=0
        wait "$child" || code=$?
        if [ "$code" -eq 2 ]; then
            exit 2
        elif [ "$code" -ne 0 ]; then
            echo "make run: the worker exited with code $code; starting a new one in a second" >&2
            sleep 1
        else
            echo "make run: the worker exited (recycled); starting a new one" >&2
        fi
    done
}

GLEANER_HTTP_PORT="$gateway_port" "$bin/gleaner" gateway & pids+=($!)
GLEANER_HTTP_PORT="$scheduler_port" "$bin/gleaner" scheduler & pids+=($!)
supervise_worker & pids+=($!)
# make does not pass its own SIGTERM on (`timeout 60 make run`): stop with whoever started this script
parent=$PPID
( while kill -0 "$parent" 2>/dev/null; do sleep 1; done; kill -TERM $$ 2>/dev/null ) & pids+=($!)

where() {
    local local_host="$host" management="${GLEANER_RABBITMQ_MANAGEMENT_URL:-}"
    case "$local_host" in 0.0.0.0 | :: | "") local_host=127.0.0.1 ;; esac
    if [ -z "$management" ]; then
        management="http://$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).hostname or "127.0.0.1")' "${GLEANER_AMQP_URL:-amqp://127.0.0.1/}"):15672/"
    fi
    cat <<EOF

Gleaner is running (Ctrl-C stops it):
  API        http://$local_host:$gateway_port/api/v1   (OpenAPI: /api/v1/openapi.json)
  console    http://$local_host:$gateway_port/console/   (sign in with an API key or the token below)
  RabbitMQ   $management   (management UI)
  metrics    http://$local_host:$gateway_port/metrics (gateway), :$worker_port/metrics (worker), :$scheduler_port/metrics (scheduler)
  token      $GLEANER_ADMIN_TOKEN   (admin; GLEANER_ADMIN_TOKEN)
In another terminal, for the \`gleaner\` command (some of it reads PostgreSQL directly) and the README's examples:
  export PATH="$(cd "${VENV:-.venv}/bin" && pwd):\$PATH" GLEANER_API_URL=http://$local_host:$gateway_port/api/v1 GLEANER_API_TOKEN=$GLEANER_ADMIN_TOKEN GLEANER_DATABASE_URL=$GLEANER_DATABASE_URL

EOF
}

# the banner once the gateway answers ready (it exits on a mistake: then `wait -n` below ends the stack)
for _ in $(seq 1 300); do
    if "$bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$gateway_port/readyz" 2>/dev/null; then
        where
        break
    fi
    kill -0 "${pids[0]}" 2>/dev/null || break
    sleep 0.2
done
wait -n
