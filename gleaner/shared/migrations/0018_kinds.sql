-- The job kinds workers serve, as they declare them at start and with every heartbeat: the gateway checks
-- submissions against this table (known kind, payload schema, `admin` for privileged kinds) and never imports
-- handler code. A kind once registered stays: with no worker alive its jobs wait, and GET /kinds says so.
CREATE TABLE kinds (
    name           text        PRIMARY KEY,
    -- the queue the handler asked its jobs to go to when a submission names none (NULL: the default queue)
    queue          text,
    -- the queues the workers serving the kind consume
    queues         text[]      NOT NULL DEFAULT '{}',
    description    text,
    payload_schema jsonb,
    privileged     boolean     NOT NULL DEFAULT false,
    registered_at  timestamptz NOT NULL DEFAULT now(),
    changed_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now()
);
-- which kinds each worker serves: GET /kinds counts a kind's alive workers from it
ALTER TABLE workers ADD COLUMN kinds text[] NOT NULL DEFAULT '{}';
