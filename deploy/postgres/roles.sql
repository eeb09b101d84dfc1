-- Gleaner's PostgreSQL roles and database, once per cluster, as a superuser (or a role with CREATEROLE and
-- CREATEDB). Safe to run again: what exists is kept.
--
--   psql -v ON_ERROR_STOP=1 -v database=gleaner -v owner=gleaner_migrate \
--        -v gateway=gleaner_gateway -v worker=gleaner_worker -v scheduler=gleaner_scheduler \
--        -f deploy/postgres/roles.sql
--
-- `owner` runs `gleaner migrate` and owns every table; the three service roles own nothing and get exactly their
-- privileges from `gleaner migrate --grant gateway=… --grant worker=… --grant scheduler=…` (gleaner/shared/grants.py),
-- which the migration Job runs after every migration. Passwords are not set here: use your secret manager, or
-- `ALTER ROLE … PASSWORD …` (deploy/postgres/compose-init.sh does that for compose).

SELECT format('CREATE ROLE %I LOGIN', name)
FROM (VALUES (:'owner'), (:'gateway'), (:'worker'), (:'scheduler')) AS wanted (name)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)
\gexec

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database')
\gexec

ALTER DATABASE :"database" OWNER TO :"owner";

-- PUBLIC may connect to every database and create temporary tables by default; here only Gleaner's roles connect.
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO :"gateway", :"worker", :"scheduler";

-- The owner creates the tables in the public schema; nobody else creates anything there (PostgreSQL 15 and
-- later no longer let PUBLIC create objects in it, older versions did).
\connect :"database"
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
