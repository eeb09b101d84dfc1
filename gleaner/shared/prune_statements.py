"""Deleting rows past their age in batches: statements for the scheduler's pruner and `maintenance.prune`.

Each takes ($1 age in seconds, $2 batch size) and deletes at most one batch; PRUNE_JOBS also takes where the batch
before it stopped, and answers a row (see `gleaner.shared.pruning`).
"""

# served by the jobs_finished index, in finish order from where the last batch stopped ($3, NULL at first: a keyset,
# so no batch walks again over the index entries of rows the batches before it deleted), deleted by primary key in
# id order; the child rows go with their jobs (job_attempts by a statement trigger, the others ON DELETE CASCADE).
# Rows another transaction holds (a requeue, the other pruner: the scheduler's and maintenance.prune) are left for
# the next pass, so two prunes never wait for each other in a cycle. Answers how many it deleted and the finish time
# it reached.
PRUNE_JOBS = """
WITH doomed AS (
    SELECT id, finished_at FROM jobs
    WHERE finished_at >= COALESCE($3::timestamptz, '-infinity') AND finished_at < now() - make_interval(secs => $1)
      AND state IN ('succeeded', 'partial', 'failed', 'cancelled')
    ORDER BY finished_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM jobs WHERE id = ANY (ARRAY(SELECT id FROM doomed ORDER BY id)) RETURNING finished_at
)
SELECT count(*) AS deleted, max(finished_at) AS reached FROM gone
"""
PRUNE_DEAD_LETTERS = """
DELETE FROM dead_letters WHERE id IN (
    SELECT id FROM dead_letters WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)
"""
PRUNE_SITE_MINUTES = """
DELETE FROM site_minutes WHERE (site, minute) IN (
    SELECT site, minute FROM site_minutes WHERE minute < now() - make_interval(secs => $1) LIMIT $2)
"""
# job_minutes and job_hours follow jobs by themselves (a pruned job leaves its counts): only emptied rows go
PRUNE_JOB_MINUTES = """
DELETE FROM job_minutes WHERE (minute, site, kind, state, bucket) IN (
    SELECT minute, site, kind, state, bucket FROM job_minutes
    WHERE minute < now() - make_interval(secs => $1) AND jobs = 0 AND deferrals = 0 LIMIT $2)
"""
PRUNE_JOB_HOURS = """
DELETE FROM job_hours WHERE (hour, site, kind, state, bucket) IN (
    SELECT hour, site, kind, state, bucket FROM job_hours
    WHERE hour < now() - make_interval(secs => $1) AND jobs = 0 AND deferrals = 0 LIMIT $2)
"""
PRUNE_IDEMPOTENCY = """
DELETE FROM idempotency_keys WHERE (principal, key) IN (
    SELECT principal, key FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)
"""
PRUNE_WORKERS = """
DELETE FROM workers WHERE id IN (
    SELECT id FROM workers WHERE last_seen_at < now() - make_interval(secs => $1) LIMIT $2)
"""
