#!/bin/sh
# compose only (docker-entrypoint-initdb.d, on the first start): Gleaner's roles and database from roles.sql,
# with the local passwords compose.yaml uses. Never use these passwords anywhere else.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v database=gleaner -v owner=gleaner_migrate -v gateway=gleaner_gateway \
    -v worker=gleaner_worker -v scheduler=gleaner_scheduler -f /gleaner/roles.sql
for service in migrate gateway worker scheduler; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "ALTER ROLE gleaner_$service PASSWORD 'local-$service-change-me'"
done
