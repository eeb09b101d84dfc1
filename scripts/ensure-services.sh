#!/usr/bin/env bash
# Start the local RabbitMQ and PostgreSQL if they are down, and enable the RabbitMQ plugins we use.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  echo "port $1 did not open" >&2; return 1
}

if ! port_open 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_port 5432
fi
if ! port_open 5672; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  wait_port 5672
fi
if command -v rabbitmq-plugins >/dev/null && ! port_open 15672; then
  rabbitmq-plugins enable --quiet rabbitmq_management rabbitmq_prometheus >/dev/null 2>&1 \
    || echo "could not enable the RabbitMQ management plugins (the /queues unacked count needs them)" >&2
fi
