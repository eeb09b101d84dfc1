-- The rollups' trigger and upsert plan their statements once per session, whatever plan_cache_mode the session runs
-- under (issue 13). The worker's sessions force custom plans (gleaner.shared.db.CUSTOM_PLANS), and that setting reaches
-- the plpgsql statements of the triggers its updates fire: the trigger's `shares := ARRAY(...)` (a plpgsql assignment,
-- which always has parameters) was planned again on every claim and every finish, and the two upserts of
-- job_rollups_add on every finish. Their plans have no choice to make from the values (scans of the transition tables
-- and of the shares array, an upsert by primary key), so a generic plan is the one plan.
-- Measured with pg_stat_statements (track_planning on), 30,000 jobs inserted, claimed in groups of 124 and finished
-- in groups of 200 through the gateway's and the worker's code: the trigger's statement planned 392 times (8.2 µs of
-- planning a job) -> twice; the upserts 300 times (1.7 µs a job) -> never.
SET LOCAL lock_timeout = '5s';

ALTER FUNCTION job_minutes_count() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION job_rollups_add(job_share[]) SET plan_cache_mode = force_generic_plan;
