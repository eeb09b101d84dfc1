-- Default maintenance schedules (editable through the API like any other; `source` = 'system').
-- Times are UTC; each schedule skips slots missed while the scheduler was down.

INSERT INTO schedules (name, kind, cron, timezone, job, misfire, overlap, source, next_slot_at, next_fire_at)
VALUES
    ('maintenance.prune', 'cron', '15 3 * * *', 'UTC',
     '{"kind": "maintenance.prune", "payload": {"retention_days": 30}, "queue": null, "priority": 1, "max_attempts": 3, "timeout_s": 3600}',
     'skip', 'skip', 'system',
     date_trunc('day', now()) + interval '1 day 3 hours 15 minutes',
     date_trunc('day', now()) + interval '1 day 3 hours 15 minutes'),
    ('maintenance.prune_results', 'cron', '45 3 * * *', 'UTC',
     '{"kind": "maintenance.prune_results", "payload": {"retention_days": 7}, "queue": null, "priority": 1, "max_attempts": 3, "timeout_s": 3600}',
     'skip', 'skip', 'system',
     date_trunc('day', now()) + interval '1 day 3 hours 45 minutes',
     date_trunc('day', now()) + interval '1 day 3 hours 45 minutes'),
    ('maintenance.analyze', 'cron', '30 * * * *', 'UTC',
     '{"kind": "maintenance.analyze", "payload": {}, "queue": null, "priority": 1, "max_attempts": 1, "timeout_s": 600}',
     'skip', 'skip', 'system',
     date_trunc('hour', now()) + interval '90 minutes',
     date_trunc('hour', now()) + interval '90 minutes');
