-- Sites and politeness: per-site policy with its live limiter state, concurrency slots, scrape results.
--
-- A job whose `site` names no row here fails permanently with error class `unknown_site` (never unthrottled).

CREATE TABLE sites (
    name                text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    requests_per_hour   double precision NOT NULL DEFAULT 3600 CHECK (requests_per_hour > 0),
    burst               integer          NOT NULL DEFAULT 1 CHECK (burst >= 1),
    min_delay_s         double precision NOT NULL DEFAULT 0 CHECK (min_delay_s >= 0),
    pause_min_s         double precision NOT NULL DEFAULT 0 CHECK (pause_min_s >= 0),
    pause_max_s         double precision NOT NULL DEFAULT 0,
    -- {"timezone": "Europe/Berlin", "start": "09:00", "end": "17:00", "factor": 2.0}; the window may wrap midnight
    respectful_hours    jsonb CHECK (respectful_hours IS NULL OR (
                            jsonb_typeof(respectful_hours) = 'object'
                            AND respectful_hours ?& ARRAY['timezone', 'start', 'end', 'factor']
                            AND (respectful_hours ->> 'factor')::float8 >= 1)),
    -- NULL: any number of this site's jobs may run at once; 1: they never overlap
    max_concurrency     integer CHECK (max_concurrency IS NULL OR max_concurrency >= 1),
    partial_error_ratio double precision NOT NULL DEFAULT 0.3 CHECK (partial_error_ratio BETWEEN 0 AND 1),
    timeout_s           double precision NOT NULL DEFAULT 30 CHECK (timeout_s > 0),
    max_bytes           bigint           NOT NULL DEFAULT 10485760 CHECK (max_bytes > 0),
    user_agent          text CHECK (user_agent IS NULL OR length(user_agent) BETWEEN 1 AND 512),
    -- live limiter state, shared by all workers (written under the row lock by gleaner/services/worker/site_limits.py):
    -- the bucket held `tokens` at `refilled_at` (negative = requests reserved ahead); NULL = a full bucket
    tokens              double precision,
    refilled_at         timestamptz,
    -- no request of this site before this instant (min_delay_s after the last reserved request)
    next_request_at     timestamptz,
    requests_total      bigint NOT NULL DEFAULT 0,
    -- requests that had to wait for a token or the minimum delay, and job deferrals (limit or slot)
    rate_limit_waits    bigint NOT NULL DEFAULT 0,
    deferrals           bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (pause_max_s >= pause_min_s)
);

-- max_concurrency leases: one row per running job of the site; a row past expires_at is free again
CREATE TABLE site_slots (
    site       text        NOT NULL REFERENCES sites (name) ON DELETE CASCADE,
    job_id     bigint      NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt    integer     NOT NULL,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (site, job_id)
);
CREATE INDEX site_slots_holder ON site_slots (holder);

-- times a job was put back to wait for its site (no token soon, no free slot); no attempt is spent
ALTER TABLE jobs ADD COLUMN deferrals integer NOT NULL DEFAULT 0;

-- bodies by content: a re-fetch with the same hash adds no row here
CREATE TABLE scrape_bodies (
    content_hash text PRIMARY KEY,
    body         bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scrape_results (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       bigint      NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    site         text,
    url          text        NOT NULL,
    final_url    text,
    status       integer     NOT NULL,
    content_type text,
    size         bigint      NOT NULL,
    content_hash text        NOT NULL,
    fetched_at   timestamptz NOT NULL DEFAULT now(),
    -- what the handler extracted (titles, prices, ...)
    data         jsonb,
    -- the previous result of the same URL had the same hash
    unchanged    boolean     NOT NULL DEFAULT false,
    -- NULL when the handler chose not to keep the body
    body_hash    text REFERENCES scrape_bodies (content_hash)
);
CREATE INDEX scrape_results_job ON scrape_results (job_id, id);
CREATE INDEX scrape_results_url ON scrape_results (url, fetched_at DESC);
CREATE INDEX scrape_results_site ON scrape_results (site, fetched_at) WHERE site IS NOT NULL;
-- pruning bodies no result refers to
CREATE INDEX scrape_results_body ON scrape_results (body_hash) WHERE body_hash IS NOT NULL;

-- what GET /sites shows: the policy plus the live state as of now
CREATE VIEW site_status AS
SELECT s.*,
       CASE WHEN s.tokens IS NULL THEN s.burst::float8
            ELSE LEAST(s.burst::float8, s.tokens
                       + EXTRACT(EPOCH FROM (now() - s.refilled_at)) * s.requests_per_hour / 3600.0) END
           AS tokens_left,
       GREATEST(now(), s.next_request_at) AS next_allowed_at,
       (SELECT count(*) FROM site_slots AS sl WHERE sl.site = s.name AND sl.expires_at > now()) AS slots_held,
       (SELECT count(*) FROM jobs AS j WHERE j.site = s.name AND j.state = 'running') AS running_jobs
FROM sites AS s;
