-- "Mark as resolved": a dead letter someone dealt with leaves the dead-letter list but keeps its history
-- (DELETE forgets it). Requeueing a job clears its resolution.
ALTER TABLE jobs ADD COLUMN resolved_at timestamptz, ADD COLUMN resolution text;
ALTER TABLE dead_letters ADD COLUMN resolved_at timestamptz, ADD COLUMN resolution text;
