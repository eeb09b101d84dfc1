-- A claim writes two index entries, not three (issue 13): jobs_waiting leaves out running rows.
--
-- A claim moves a row from a waiting state to `running`, a version that took an entry in jobs_pkey, jobs_leases and
-- jobs_waiting. jobs_leases (`WHERE state = 'running'`) already holds exactly the running rows (every claim sets a
-- lease) and they are never more than the workers' slots, so the statements that count or read running rows read
-- that part from jobs_leases (GET /queues, the scheduler's state gauges, GET /stats; the reaper and the listings
-- already did) and jobs_waiting keeps the rows that wait. A noop job writes 11 btree entries instead of 12.
-- `python -m bench.statements 30000` on a private cluster, 6 alternated pairs: the claim's backend CPU 13.0-13.7 ->
-- 11.7-12.3 µs a job and its WAL 578 -> 493 bytes a job; the insert and the finish unchanged.
--
-- The new index is built beside the old one, then swapped, as 0041 did: writes wait for the build (reads do not), the
-- DROP's exclusive lock is taken last and held only until the commit. The build reads the whole heap but sorts and
-- writes only the waiting rows: measured with 10,000,000 finished rows (a 2.6 GB table, cached) 1.9-2.0 s on the 2-core
-- bench box, against 0041's 60 s for three indexes, two of them of every finished row; a table not in memory adds
-- the time to read it once.
SET LOCAL lock_timeout = '5s';

CREATE INDEX jobs_waiting_unclaimed ON jobs (queue, state, run_at) WHERE state IN ('scheduled', 'queued', 'retrying');

DROP INDEX jobs_waiting;
ALTER INDEX jobs_waiting_unclaimed RENAME TO jobs_waiting;
