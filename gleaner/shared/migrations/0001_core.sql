-- Core job lifecycle: jobs, their attempts, poison messages, API keys, idempotency keys.

CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL,
    queue            text        NOT NULL,
    priority         smallint    NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 9),
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    result           jsonb,
    error            jsonb,
    progress         jsonb,
    state            text        NOT NULL CHECK (state IN (
                         'scheduled', 'queued', 'running', 'retrying',
                         'succeeded', 'partial', 'failed', 'cancelled')),
    -- attempts started so far; a message for attempt n claims a row whose attempt is n-1
    attempt          integer     NOT NULL DEFAULT 0,
    -- attempts before the last requeue/retry by a user: the job may run while attempt - attempt_base < max_attempts
    attempt_base     integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    retry_base_s     double precision NOT NULL DEFAULT 1,
    retry_cap_s      double precision NOT NULL DEFAULT 300,
    timeout_s        double precision NOT NULL DEFAULT 300,
    run_at           timestamptz NOT NULL DEFAULT now(),
    -- outbox marker: set once the broker confirmed the message for the current wait
    enqueued_at      timestamptz,
    lease_owner      text,
    lease_expires_at timestamptz,
    cancel_requested boolean     NOT NULL DEFAULT false,
    site             text,
    schedule_id      bigint,
    scheduled_for    timestamptz,
    trigger          text        NOT NULL DEFAULT 'api',
    dedupe_key       text,
    request_id       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    attempt_started_at timestamptz,
    finished_at      timestamptz,
    UNIQUE (schedule_id, scheduled_for)
);

-- the relay's due query: waiting rows whose message is not confirmed yet
CREATE INDEX jobs_unenqueued ON jobs (run_at)
    WHERE enqueued_at IS NULL AND state IN ('scheduled', 'queued', 'retrying');
-- the relay's lost-message query and queue counts
CREATE INDEX jobs_waiting ON jobs (queue, state, run_at)
    WHERE state IN ('scheduled', 'queued', 'retrying', 'running');
-- the reaper
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running';
-- listing with keyset pagination (newest first), per filter
CREATE INDEX jobs_state_id ON jobs (state, id);
CREATE INDEX jobs_kind_id ON jobs (kind, id);
CREATE INDEX jobs_site_id ON jobs (site, id) WHERE site IS NOT NULL;
CREATE INDEX jobs_schedule_id ON jobs (schedule_id, id) WHERE schedule_id IS NOT NULL;
-- pruning by finish time
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- a dedupe key is unique among unfinished jobs
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running', 'retrying');

CREATE TABLE job_attempts (
    job_id        bigint      NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt       integer     NOT NULL,
    worker        text,
    started_at    timestamptz,
    finished_at   timestamptz NOT NULL DEFAULT now(),
    outcome       text        NOT NULL,
    error_class   text,
    error_message text,
    -- the backoff chosen after this attempt, when it led to a retry
    retry_delay_s double precision,
    PRIMARY KEY (job_id, attempt)
);

-- messages that could not be tied to a runnable job: undecodable bodies, unknown kinds
CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue       text        NOT NULL,
    reason      text        NOT NULL,
    detail      text        NOT NULL DEFAULT '',
    body        bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    job_id      bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_created ON dead_letters (created_at);

CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL,
    key_hash    text        NOT NULL UNIQUE,
    scopes      text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE idempotency_keys (
    key          text        NOT NULL,
    principal    text        NOT NULL,
    request_hash text        NOT NULL,
    job_ids      bigint[]    NOT NULL,
    status       integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE scheduler_state (
    id          integer PRIMARY KEY CHECK (id = 1),
    leader      text,
    leader_since timestamptz,
    paused      boolean     NOT NULL DEFAULT false,
    last_tick_at timestamptz
);
INSERT INTO scheduler_state (id) VALUES (1);
