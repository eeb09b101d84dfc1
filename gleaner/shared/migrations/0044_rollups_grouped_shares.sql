-- The rollups' trigger hands job_rollups_add one share per rollup key, not one per row (issue 13).
--
-- A finish of 200 jobs passed 200 shares (a composite value each, in an array), which job_rollups_add unnested and
-- grouped twice, once per rollup.
-- The trigger now groups its rows by minute key itself (the same sums: a row that stays finished in the same key still
-- nets to nothing, and a key whose sums are zero is left out), so a finish of one kind in one minute passes one share,
-- and job_rollups_add, unchanged, groups that. A minute's share truncated to its hour is the hour's share.
-- `python -m bench.statements 30000`, 3 alternated pairs (pg_stat_statements, statement time a job): the trigger's
-- shares 0.9 -> 1.0 µs, the call of job_rollups_add 1.1-1.2 -> 0.3 µs (its upserts 0.9 -> 0.1-0.2); the finish's
-- backend CPU 17.3-17.7 -> 17.0-17.3 µs a job.
-- A share's jobs and deferrals are integers: a statement would have to change 2^31 rows of one key to overflow them.
-- The settings of 0042 stay (CREATE OR REPLACE sets the function's settings from its definition).
SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION job_minutes_count() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    shares job_share[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        shares := ARRAY(
            SELECT ROW(g.minute, g.site, g.kind, g.state, g.bucket, g.jobs, g.deferrals)::job_share
            FROM (SELECT date_trunc('minute', n.finished_at) AS minute, COALESCE(n.site, '') AS site, n.kind, n.state,
                         job_minutes_bucket(n.attempt_started_at, n.finished_at, n.state) AS bucket,
                         count(*)::integer AS jobs, sum(n.deferrals)::integer AS deferrals
                  FROM new_rows AS n
                  WHERE n.finished_at IS NOT NULL AND n.state IN ('succeeded', 'partial', 'failed', 'cancelled')
                  GROUP BY 1, 2, 3, 4, 5) AS g);
    ELSIF TG_OP = 'DELETE' THEN
        shares := ARRAY(
            SELECT ROW(g.minute, g.site, g.kind, g.state, g.bucket, g.jobs, g.deferrals)::job_share
            FROM (SELECT date_trunc('minute', o.finished_at) AS minute, COALESCE(o.site, '') AS site, o.kind, o.state,
                         job_minutes_bucket(o.attempt_started_at, o.finished_at, o.state) AS bucket,
                         -count(*)::integer AS jobs, -sum(o.deferrals)::integer AS deferrals
                  FROM old_rows AS o
                  WHERE o.finished_at IS NOT NULL AND o.state IN ('succeeded', 'partial', 'failed', 'cancelled')
                  GROUP BY 1, 2, 3, 4, 5) AS g);
    ELSE
        shares := ARRAY(
            SELECT ROW(g.minute, g.site, g.kind, g.state, g.bucket, g.jobs, g.deferrals)::job_share
            FROM (SELECT date_trunc('minute', s.finished_at) AS minute, s.site, s.kind, s.state, s.bucket,
                         sum(s.jobs)::integer AS jobs, sum(s.deferrals)::integer AS deferrals
                  FROM (SELECT n.finished_at, COALESCE(n.site, '') AS site, n.kind, n.state,
                               job_minutes_bucket(n.attempt_started_at, n.finished_at, n.state) AS bucket,
                               1 AS jobs, n.deferrals
                        FROM new_rows AS n
                        WHERE n.finished_at IS NOT NULL AND n.state IN ('succeeded', 'partial', 'failed', 'cancelled')
                        UNION ALL
                        SELECT o.finished_at, COALESCE(o.site, ''), o.kind, o.state,
                               job_minutes_bucket(o.attempt_started_at, o.finished_at, o.state), -1, -o.deferrals
                        FROM old_rows AS o
                        WHERE o.finished_at IS NOT NULL AND o.state IN ('succeeded', 'partial', 'failed', 'cancelled')
                  ) AS s
                  GROUP BY 1, 2, 3, 4, 5 HAVING sum(s.jobs) <> 0 OR sum(s.deferrals) <> 0) AS g);
    END IF;
    IF cardinality(shares) > 0 THEN
        PERFORM job_rollups_add(shares);
    END IF;
    RETURN NULL;
END
$$;
