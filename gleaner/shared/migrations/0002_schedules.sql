-- Schedules: interval, cron and one-shot, each naming the job it creates; fired once per slot.

CREATE TABLE schedules (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL UNIQUE,
    kind            text        NOT NULL CHECK (kind IN ('interval', 'cron', 'once')),
    interval_s      double precision CHECK (interval_s > 0),
    jitter          double precision NOT NULL DEFAULT 0.1 CHECK (jitter BETWEEN 0 AND 0.5),
    cron            text,
    timezone        text        NOT NULL DEFAULT 'UTC',
    at              timestamptz,
    anchor          timestamptz NOT NULL DEFAULT now(),
    -- the job template: kind, payload, queue, priority, max_attempts, timeout_s, retry_base_s, retry_cap_s, site
    job             jsonb       NOT NULL,
    misfire         text        NOT NULL DEFAULT 'fire_once' CHECK (misfire IN ('fire_once', 'skip')),
    overlap         text        NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip')),
    misfire_grace_s double precision NOT NULL DEFAULT 60 CHECK (misfire_grace_s >= 0),
    enabled         boolean     NOT NULL DEFAULT true,
    paused          boolean     NOT NULL DEFAULT false,
    -- the nominal slot waited for (the job's scheduled_for) and when to fire it (slot + jitter)
    next_slot_at    timestamptz,
    next_fire_at    timestamptz,
    last_slot_at    timestamptz,
    last_fire_at    timestamptz,
    last_job_id     bigint,
    fired_count     bigint      NOT NULL DEFAULT 0,
    skipped_overlap_count bigint NOT NULL DEFAULT 0,
    misfire_skipped_count bigint NOT NULL DEFAULT 0,
    source          text        NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'file', 'system')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- the firing loop's due query
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled AND NOT paused;

ALTER TABLE jobs
    ADD CONSTRAINT jobs_schedule_fk FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE SET NULL;

ALTER TABLE scheduler_state
    ADD COLUMN last_fire_lag_s double precision,
    ADD COLUMN due_backlog integer NOT NULL DEFAULT 0;
