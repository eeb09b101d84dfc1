"""Putting finished jobs back in the queue: the column reset, and the automatic requeue of failed jobs."""

# A fresh attempt budget (attempt_base moves up to attempt); the relay or the caller publishes the row.
REQUEUE_SET = """state = 'queued', attempt_base = attempt, run_at = now(), enqueued_at = NULL, finished_at = NULL,
    error = NULL, result = NULL, cancel_requested = false, lease_owner = NULL, lease_expires_at = NULL,
    resolved_at = NULL, resolution = NULL, updated_at = now()"""

# for a failed row `f`: no unfinished job holds its dedupe key now (requeueing it would break the key)
DEDUPE_FREE = """(f.dedupe_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM jobs AS o WHERE o.dedupe_key = f.dedupe_key
            AND o.state IN ('scheduled', 'queued', 'running', 'retrying', 'blocked')))"""

# Failed jobs not resolved by hand that used up their attempts (a permanent error usually ends a job
# earlier), failed at least $2 seconds ago and have had fewer than $1 rounds of max_attempts in all;
# $3/$4 filter kind and queue.
AUTO_REQUEUE = f"""
WITH picked AS (
    SELECT id FROM jobs AS f
    WHERE state = 'failed' AND resolved_at IS NULL
      AND attempt - attempt_base >= max_attempts AND attempt < $1 * max_attempts
      AND finished_at < now() - make_interval(secs => $2)
      AND ($3::text IS NULL OR kind = $3) AND ($4::text IS NULL OR queue = $4)
      AND {DEDUPE_FREE}
    ORDER BY id LIMIT $5
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs AS j SET {REQUEUE_SET}
FROM picked WHERE j.id = picked.id AND j.state = 'failed'
RETURNING j.id
"""
