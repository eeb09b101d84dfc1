-- The automatic requeue of failed jobs (the seeds' hourly "process-dlq"), installed disabled: it changes what
-- "failed" means for every job, so an operator turns it on (PATCH /schedules/{id} with {"enabled": true};
-- the id is in GET /schedules) and tunes its payload (rounds, min_age_s, kind, queue, limit).
INSERT INTO schedules (name, kind, cron, timezone, job, misfire, overlap, source, enabled, next_slot_at, next_fire_at)
VALUES
    ('maintenance.requeue_failed', 'cron', '5 * * * *', 'UTC',
     '{"kind": "maintenance.requeue_failed", "payload": {"rounds": 3, "min_age_s": 3600}, "queue": null, "priority": 1, "max_attempts": 1, "timeout_s": 600}',
     'skip', 'skip', 'system', false,
     date_trunc('hour', now()) + interval '65 minutes',
     date_trunc('hour', now()) + interval '65 minutes');
