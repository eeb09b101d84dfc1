#!/usr/bin/env bash
# Create the database named in a postgresql:// URL if it does not exist yet.
set -euo pipefail
url="$1"
name="${url##*/}"; name="${name%%\?*}"
admin="${url%/*}/postgres"
if ! psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
  psql "$admin" -qc "CREATE DATABASE \"$name\""
  echo "created database $name"
fi
