-- Fewer index entries per job (issue 13): the listing indexes leave out the versions no listing needs them for.
--
-- A noop job writes three versions of its row (insert, claim, finish), none of them HOT (each changes `state`), and
-- each version took an entry in every index whose predicate it met: 16 btree entries a job, 9 of them in jobs_state_id,
-- jobs_kind_id and jobs_updated_at. Now:
--   * running rows leave all three: jobs_leases holds exactly the running rows (every claim sets a lease), and they
--     are at most as many as the workers' slots, so a listing reads them all from there (job_store.list_query);
--   * a finished row whose `updated_at` is its `finished_at` (every finish writes both as now()) leaves
--     jobs_updated_at: `updated_at > $t` is then `finished_at > $t`, which jobs_finished answers; a row changed after
--     it finished (a dead letter resolved by hand) has a later `updated_at` and stays in; a requeued row is unfinished.
-- Entries a noop job writes: insert 5 -> 5, claim 6 -> 3, finish 5 -> 4 (16 -> 12; btree leaf inserts in the WAL of
-- a 20,000-job e2e run, every table: 16.98 -> 13.05 a job). e2e 100,000 jobs, 4-5 alternated runs each, medians:
-- statement time a job claim 135 -> 89, finish 177 -> 147, insert (the same entries) 100 -> 79 µs; PostgreSQL CPU
-- 224 -> 198 µs a job.
--
-- The new indexes are built beside the old ones (writes wait for the build, reads do not: 60 s at 10,000,000 rows on
-- the 2-core bench box), then swapped: the DROPs' exclusive lock is taken last and held only until the commit.
SET LOCAL lock_timeout = '5s';

CREATE INDEX jobs_state_id_settled ON jobs (state, id) WHERE state <> 'running';
CREATE INDEX jobs_kind_id_settled ON jobs (kind, id) WHERE state <> 'running';
CREATE INDEX jobs_updated_at_changed ON jobs (updated_at)
    WHERE state <> 'running' AND updated_at IS DISTINCT FROM finished_at;

DROP INDEX jobs_state_id, jobs_kind_id, jobs_updated_at;
ALTER INDEX jobs_state_id_settled RENAME TO jobs_state_id;
ALTER INDEX jobs_kind_id_settled RENAME TO jobs_kind_id;
ALTER INDEX jobs_updated_at_changed RENAME TO jobs_updated_at;
