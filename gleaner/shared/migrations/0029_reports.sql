-- GET /reports and the maintenance.report kind: the top error classes of a window come from the failed attempts
-- finished in it, which this index holds alone (a small share of job_attempts).
SET LOCAL lock_timeout = '5s';
CREATE INDEX job_attempts_errors ON job_attempts (finished_at) WHERE error_class IS NOT NULL;

-- A report every 6 hours, stored as the job's result (GET /jobs?kind=maintenance.report). Installed disabled, like
-- the automatic requeue: enable it with PATCH /schedules/maintenance.report {"enabled": true}.
INSERT INTO schedules (name, description, kind, cron, timezone, job, misfire, overlap, source, enabled,
                       next_slot_at, next_fire_at)
VALUES
    ('maintenance.report', 'per site and kind: outcomes, success rate, durations, error classes, dead letters',
     'cron', '0 */6 * * *', 'UTC',
     '{"kind": "maintenance.report", "payload": {"hours": 6}, "queue": null, "priority": 1, "max_attempts": 1, "timeout_s": 600}',
     'skip', 'skip', 'system', false,
     date_trunc('hour', now()) + interval '6 hours', date_trunc('hour', now()) + interval '6 hours');
