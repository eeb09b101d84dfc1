-- Workers announce themselves with every heartbeat, so GET /workers can say which are alive, what they
-- consume and how busy they are (the seeds' active worker counts and Flower's worker list).
CREATE TABLE workers (
    id           text        PRIMARY KEY,
    queues       text[]      NOT NULL,
    concurrency  integer     NOT NULL,
    running      integer     NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- set by a graceful stop; a worker that died keeps NULL and simply stops being seen
    stopped_at   timestamptz
);
