-- The gateway's outbox as a row per insert statement instead of a mark per job (issue 13). A submitted job due now is
-- inserted already counted as enqueued (`enqueued_at` set, so it never enters jobs_unenqueued), and the same
-- statement records its id here; once the broker confirms the message(s), the gateway deletes the row (gathered, one
-- DELETE for many statements). A row that outlives the relay's grace, or whose publish failed, is the relay's to
-- publish. Before, each confirmed job still waiting was marked by an UPDATE of `jobs` touching every index: 0.95
-- writes a job in the e2e backlog bench, ~96 µs of statement time a job out of ~430.
SET LOCAL lock_timeout = '5s';

CREATE TABLE job_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_ids    bigint[]    NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- the broker did not confirm: the relay publishes at once, without waiting out the grace
    failed     boolean     NOT NULL DEFAULT false
);
