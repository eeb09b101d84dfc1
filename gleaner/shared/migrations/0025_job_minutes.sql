-- Finished jobs counted per minute, so GET /stats over a day or a week reads a few thousand rollup rows instead
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

-- Each statement's changes at once (transition tables): minus the finished rows it changed as they were, plus
-- them as they are, grouped and added in key order (two statements never wait for each other in a cycle here).
-- SECURITY DEFINER: the services write the rollup only through this trigger, and need no grant on it.
CREATE FUNCTION job_minutes_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_minutes AS r (minute, site, kind, state, bucket, jobs, deferrals)
        SELECT date_trunc('minute', n.finished_at), COALESCE(n.site, ''), n.kind, n.state,
               job_minutes_bucket(n.attempt_started_at, n.finished_at, n.state), count(*), sum(n.deferrals)
        FROM new_rows AS n
        WHERE n.finished_at IS NOT NULL AND n.state IN ('succeeded', 'partial', 'failed', 'cancelled')
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (minute, site, kind, state, bucket)
        DO UPDATE SET jobs = r.jobs + EXCLUDED.jobs, deferrals = r.deferrals + EXCLUDED.deferrals;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO job_minutes AS r (minute, site, kind, state, bucket, jobs, deferrals)
        SELECT date_trunc('minute', o.finished_at), COALESCE(o.site, ''), o.kind, o.state,
               job_minutes_bucket(o.attempt_started_at, o.finished_at, o.state), -count(*), -sum(o.deferrals)
        FROM old_rows AS o
        WHERE o.finished_at IS NOT NULL AND o.state IN ('succeeded', 'partial', 'failed', 'cancelled')
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (minute, site, kind, state, bucket)
        DO UPDATE SET jobs = r.jobs + EXCLUDED.jobs, deferrals = r.deferrals + EXCLUDED.deferrals;
    ELSE
        INSERT INTO job_minutes AS r (minute, site, kind, state, bucket, jobs, deferrals)
        SELECT date_trunc('minute', c.finished_at), COALESCE(c.site, ''), c.kind, c.state,
               job_minutes_bucket(c.attempt_started_at, c.finished_at, c.state), sum(c.sign), sum(c.sign * c.deferrals)
        FROM (
            SELECT o.finished_at, o.site, o.kind, o.state, o.attempt_started_at, o.deferrals, -1 AS sign
            FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
            WHERE (o.finished_at, o.site, o.kind, o.state, o.attempt_started_at, o.deferrals)
                  IS DISTINCT FROM (n.finished_at, n.site, n.kind, n.state, n.attempt_started_at, n.deferrals)
            UNION ALL
            SELECT n.finished_at, n.site, n.kind, n.state, n.attempt_started_at, n.deferrals, 1
            FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
            WHERE (o.finished_at, o.site, o.kind, o.state, o.attempt_started_at, o.deferrals)
                  IS DISTINCT FROM (n.finished_at, n.site, n.kind, n.state, n.attempt_started_at, n.deferrals)
        ) AS c
        WHERE c.finished_at IS NOT NULL AND c.state IN ('succeeded', 'partial', 'failed', 'cancelled')
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(c.sign) <> 0 OR sum(c.sign * c.deferrals) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (minute, site, kind, state, bucket)
        DO UPDATE SET jobs = r.jobs + EXCLUDED.jobs, deferrals = r.deferrals + EXCLUDED.deferrals;
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
