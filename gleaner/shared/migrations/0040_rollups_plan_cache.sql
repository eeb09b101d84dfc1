-- The rollups' upsert as plpgsql instead of a SQL function: PostgreSQL plans a SQL function's statements again on every
-- call (it keeps no plan for them across calls), and job_rollups_add is called by every statement that finishes,
-- deletes or inserts finished jobs. plpgsql keeps the two upserts' plans for the session. Measured with
-- pg_stat_statements, 30,000 jobs claimed and finished in groups of 64 through the worker's JobStore, twice each: the
-- finish 28.5 / 26.7 -> 23.3 / 24.1 µs of statement time a job, the call inside it 5.7 / 5.3 -> 2.3 / 2.4 µs.
-- The body is unchanged.
CREATE OR REPLACE FUNCTION job_rollups_add(shares job_share[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
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
END
$$;
