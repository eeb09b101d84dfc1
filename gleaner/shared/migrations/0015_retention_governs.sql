-- The default maintenance schedules follow the configured retention instead of fixed days: maintenance.prune
-- keeps what GLEANER_RETENTION_DAYS says (0: forever) and maintenance.prune_results what
-- GLEANER_RESULT_RETENTION_DAYS says. Their payloads stop naming days; a payload an operator edited is left as is.
UPDATE schedules SET job = jsonb_set(job, '{payload}', '{}'::jsonb), updated_at = now()
WHERE source = 'system' AND name = 'maintenance.prune' AND job -> 'payload' = '{"retention_days": 30}'::jsonb;
UPDATE schedules SET job = jsonb_set(job, '{payload}', '{}'::jsonb), updated_at = now()
WHERE source = 'system' AND name = 'maintenance.prune_results' AND job -> 'payload' = '{"retention_days": 7}'::jsonb;
