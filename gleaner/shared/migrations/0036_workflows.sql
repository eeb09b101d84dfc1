-- Workflows (issue 14): child jobs (`parent_id`, created by a handler's ctx.submit), dependencies (`depends_on`,
-- a job waits in the new state `blocked` until they end) and batch `then` callbacks.
--
-- Release happens here, in PostgreSQL, in the transaction that records a dependency's final outcome, whoever
-- records it (a worker's finish, the reaper, a cancel, a requeue's dead-lettering): an AFTER UPDATE row trigger,
-- guarded by a WHEN clause on `has_dependents`, which only jobs that something depends on carry, so the UPDATE of
-- every other job pays nothing but the WHEN check. A released job becomes `queued` with no confirmed message and
-- `publish_failed` set: the scheduler's relay publishes it on its next pass, so a worker killed after the commit
-- loses nothing, and one killed before it rolls the release back with the outcome (the job runs again).
SET LOCAL lock_timeout = '5s';

ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check CHECK (state IN (
    'scheduled', 'queued', 'running', 'retrying', 'blocked',
    'succeeded', 'partial', 'failed', 'cancelled')) NOT VALID;
ALTER TABLE jobs VALIDATE CONSTRAINT jobs_state_check;

ALTER TABLE jobs
    -- the job whose handler created this one (ctx.submit), and the key that makes that creation happen once
    ADD COLUMN parent_id bigint,
    ADD COLUMN child_key text,
    -- the dependencies the submission named (the job also waits for their children: see job_dependencies)
    ADD COLUMN depends_on bigint[],
    -- dependencies not ended yet; the job is `blocked` while this is above 0
    ADD COLUMN blocked_on integer NOT NULL DEFAULT 0,
    -- some job depends on this one: only such rows fire the release trigger
    ADD COLUMN has_dependents boolean NOT NULL DEFAULT false,
    ADD COLUMN on_dependency_failure text NOT NULL DEFAULT 'cancel'
        CHECK (on_dependency_failure IN ('cancel', 'run')),
    ADD COLUMN allow_partial boolean NOT NULL DEFAULT false,
    -- a batch's `then` callback: on release its payload gets the ids and outcome counts of its dependencies
    ADD COLUMN collects_outcomes boolean NOT NULL DEFAULT false;

CREATE INDEX jobs_parent_id ON jobs (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX jobs_child_key ON jobs (parent_id, child_key) WHERE child_key IS NOT NULL;

-- One row per edge: `job_id` waits for `depends_on_id`; `outcome` is the dependency's final state once it ended
-- (each edge counts once, so a dependency retried by a user after it ended never releases a job twice).
CREATE TABLE job_dependencies (
    depends_on_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    job_id        bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    outcome       text,
    PRIMARY KEY (depends_on_id, job_id)
);
CREATE INDEX job_dependencies_job_id ON job_dependencies (job_id);

-- What a `then` callback receives: its dependencies' ids and outcome counts, in total and by kind.
CREATE FUNCTION job_dependency_outcomes(waiting bigint) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT jsonb_build_object(
        'job_ids', (SELECT COALESCE(jsonb_agg(e.depends_on_id ORDER BY e.depends_on_id), '[]')
                    FROM job_dependencies AS e WHERE e.job_id = waiting),
        'outcomes', (SELECT COALESCE(jsonb_object_agg(o.outcome, o.n), '{}') FROM (
            SELECT e.outcome, count(*) AS n FROM job_dependencies AS e
            WHERE e.job_id = waiting GROUP BY e.outcome) AS o),
        'kinds', (SELECT COALESCE(jsonb_object_agg(k.kind, k.outcomes), '{}') FROM (
            SELECT q.kind, jsonb_object_agg(q.outcome, q.n) AS outcomes FROM (
                SELECT d.kind, e.outcome, count(*) AS n
                FROM job_dependencies AS e JOIN jobs AS d ON d.id = e.depends_on_id
                WHERE e.job_id = waiting GROUP BY d.kind, e.outcome) AS q
            GROUP BY q.kind) AS k))
$$;

-- The dependency NEW ended: resolve its open edges, then (locking the dependents in id order first, so the
-- statements that follow read what a concurrent release committed) count each dependent down, releasing it at 0
-- or cancelling it when the dependency did not succeed and it does not run anyway. Two dependencies of one job
-- ending at once: the second waits for the first's row lock and reads its count, so the job is released once.
-- A cancelled dependent is itself a dependency that ended: the trigger fires again for its own dependents.
CREATE FUNCTION jobs_release_dependents() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    waiting bigint[];
BEGIN
    WITH resolved AS (
        UPDATE job_dependencies SET outcome = NEW.state
        WHERE depends_on_id = NEW.id AND outcome IS NULL
        RETURNING job_id
    )
    SELECT array_agg(job_id ORDER BY job_id) INTO waiting FROM resolved;
    IF waiting IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM jobs WHERE id = ANY(waiting) ORDER BY id FOR NO KEY UPDATE;
    WITH verdict AS (
        SELECT j.id,
               (NEW.state IN ('failed', 'cancelled') OR (NEW.state = 'partial' AND NOT j.allow_partial))
                   AND j.on_dependency_failure = 'cancel' AS cancel,
               j.blocked_on <= 1 AS last
        FROM jobs AS j WHERE j.id = ANY(waiting) AND j.state = 'blocked'
    )
    UPDATE jobs AS j
    SET blocked_on = GREATEST(j.blocked_on - 1, 0),
        state = CASE WHEN v.cancel THEN 'cancelled'
                     WHEN NOT v.last THEN 'blocked'
                     WHEN j.run_at > now() THEN 'scheduled'
                     ELSE 'queued' END,
        error = CASE WHEN v.cancel THEN jsonb_build_object(
                         'class', 'DependencyFailed',
                         'message', format('dependency %s ended %s', NEW.id, NEW.state))
                     ELSE j.error END,
        finished_at = CASE WHEN v.cancel THEN now() ELSE j.finished_at END,
        -- queue wait counts from the release, not from the submission
        run_at = CASE WHEN v.last AND NOT v.cancel THEN GREATEST(j.run_at, now()) ELSE j.run_at END,
        payload = CASE WHEN v.last AND NOT v.cancel AND j.collects_outcomes
                       THEN j.payload || jsonb_build_object('dependencies', job_dependency_outcomes(j.id))
                       ELSE j.payload END,
        enqueued_at = NULL,
        publish_failed = NOT v.cancel AND v.last,
        updated_at = now()
    FROM verdict AS v
    WHERE j.id = v.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_release_dependents AFTER UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (NEW.has_dependents AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state IN ('succeeded', 'partial', 'failed', 'cancelled'))
    EXECUTE FUNCTION jobs_release_dependents();
