-- The leader records its effective settings (intervals, grace, retention, defaults) when it takes over, for
-- GET /scheduler/config; NULL until a leader has.
SET LOCAL lock_timeout = '5s';
ALTER TABLE scheduler_state ADD COLUMN settings jsonb, ADD COLUMN settings_by text, ADD COLUMN settings_at timestamptz;
