-- Finished jobs counted per minute and per hour, so GET /stats over a day or a week reads a few thousand rollup rows instead
-- of every job finished in it (at 2,000,000 rows the 7-day window took 593 ms; it grows with the history).
-- One row per finish minute, site ('' for none), kind, final state and duration bucket, kept equal to the jobs
-- table by statement triggers: a row counts here exactly while it is finished in `jobs` (a requeue or a prune
-- takes it out again), whichever service or statement wrote it. The duration of the last attempt is kept as a
-- bucket floor(8 * log2(seconds)) (2^(1/8) wide: percentiles within 4.5%); -32768 for no duration.
CREATE TABLE job_minutes (
    minute    timestamptz NOT NULL,
    site      text        NOT NULL,
    kind      text        NOT NULL,
    state     text        NOT NULL,
    bucket    integer     NOT NULL,
    jobs      bigint      NOT NULL,
    deferrals bigint      NOT NULL,
    PRIMARY KEY (minute, site, kind, state, bucket)
);

CREATE FUNCTION job_minutes_bucket(started timestamptz, finished timestamptz, state text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN state IN ('succeeded', 'partial', 'failed') AND started IS NOT NULL
                THEN floor(8 * ln(greatest(EXTRACT(EPOCH FROM (finished - started))::float8, 1e-6)) / ln(2))::integer
                ELSE -32768 END
$$;

-- The same per hour, so a week is 168 rows a group: a window reads jobs for its first part-minute, job_minutes
-- up to its first whole hour and job_hours from there.
CREATE TABLE job_hours (LIKE job_minutes INCLUDING ALL);
ALTER TABLE job_hours RENAME COLUMN minute TO hour;

-- One finished row's share (jobs +1 as it is now, -1 as it was).
CREATE TYPE job_share AS (
    finished_at timestamptz, site text, kind text, state text, bucket integer, jobs integer, deferrals integer
);

-- Adds a statement's shares to both rollups, grouped, in key order (two statements never wait for each other
-- in a cycle here).
CREATE FUNCTION job_rollups_add(shares job_share[]) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    INSERT INTO job_minutes AS r (minute, site, kind, state, bucket, jobs, deferrals)
    SELECT date_trunc('minute', s.finished_at), s.site, s.kind, s.state, s.bucket, sum(s.jobs), sum(s.deferrals)
    FROM unnest(shares) AS s
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(s.jobs) <> 0 OR sum(s.deferrals) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (minute, site, kind, state, bucket)
    DO UPDATE SET jobs = r.jobs + EXCLUDED.jobs, deferrals = r.deferrals + EXCLUDED.deferrals;
    INSERT INTO job_hours AS r (hour, site, kind, state, bucket, jobs, deferrals)
    SELECT date_trunc('hour', s.finished_at), s.site, s.kind, s.state, s.bucket, sum(s.jobs), sum(s.deferrals)
    FROM unnest(shares) AS s
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(s.jobs) <> 0 OR sum(s.deferrals) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (hour, site, kind, state, bucket)
    DO UPDATE SET jobs = r.jobs + EXCLUDED.jobs, deferrals = r.deferrals + EXCLUDED.deferrals;
$$;

-- Each statement's changes at once (transition tables): for an update, the finished rows it changed as they were
-- (-1) and as they are (+1); a statement that finishes nothing (a claim) adds nothing.
-- SECURITY DEFINER: the services write the rollups only through this trigger, and need no grant on them.
CREATE FUNCTION job_minutes_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    shares job_share[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        shares := ARRAY(
            SELECT ROW(n.finished_at, COALESCE(n.site, ''), n.kind, n.state,
                       job_minutes_bucket(n.attempt_started_at, n.finished_at, n.state), 1, n.deferrals)::job_share
            FROM new_rows AS n
            WHERE n.finished_at IS NOT NULL AND n.state IN ('succeeded', 'partial', 'failed', 'cancelled'));
    ELSIF TG_OP = 'DELETE' THEN
        shares := ARRAY(
            SELECT ROW(o.finished_at, COALESCE(o.site, ''), o.kind, o.state,
                       job_minutes_bucket(o.attempt_started_at, o.finished_at, o.state), -1, -o.deferrals)::job_share
            FROM old_rows AS o
            WHERE o.finished_at IS NOT NULL AND o.state IN ('succeeded', 'partial', 'failed', 'cancelled'));
    ELSE
        shares := ARRAY(
            SELECT ROW(c.finished_at, COALESCE(c.site, ''), c.kind, c.state,
                       job_minutes_bucket(c.attempt_started_at, c.finished_at, c.state), c.sign,
                       c.sign * c.deferrals)::job_share
            FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id,
                 LATERAL (VALUES (o.finished_at, o.site, o.kind, o.state, o.attempt_started_at, o.deferrals, -1),
                                 (n.finished_at, n.site, n.kind, n.state, n.attempt_started_at, n.deferrals, 1))
                     AS c(finished_at, site, kind, state, attempt_started_at, deferrals, sign)
            WHERE (o.finished_at, o.site, o.kind, o.state, o.attempt_started_at, o.deferrals)
                  IS DISTINCT FROM (n.finished_at, n.site, n.kind, n.state, n.attempt_started_at, n.deferrals)
              AND c.finished_at IS NOT NULL AND c.state IN ('succeeded', 'partial', 'failed', 'cancelled'));
    END IF;
    IF cardinality(shares) > 0 THEN
        PERFORM job_rollups_add(shares);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_minutes_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION job_minutes_count();
CREATE TRIGGER jobs_minutes_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION job_minutes_count();
CREATE TRIGGER jobs_minutes_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION job_minutes_count();

-- the history already there
INSERT INTO job_minutes (minute, site, kind, state, bucket, jobs, deferrals)
SELECT date_trunc('minute', finished_at), COALESCE(site, ''), kind, state,
       job_minutes_bucket(attempt_started_at, finished_at, state), count(*), sum(deferrals)
FROM jobs WHERE finished_at IS NOT NULL AND state IN ('succeeded', 'partial', 'failed', 'cancelled')
GROUP BY 1, 2, 3, 4, 5;
INSERT INTO job_hours (hour, site, kind, state, bucket, jobs, deferrals)
SELECT date_trunc('hour', minute), site, kind, state, bucket, sum(jobs), sum(deferrals)
FROM job_minutes GROUP BY 1, 2, 3, 4, 5;
