-- A schedule says what it is for in a free-text `description` (seed 004's schedule files carry one); '' for none.
SET LOCAL lock_timeout = '5s';
ALTER TABLE schedules ADD COLUMN description text NOT NULL DEFAULT '';
-- `/schedules/{id-or-name}` reads a path segment of digits as an id, so a name is never all digits from now on;
-- a name that was gets a prefix (`7` becomes `schedule-7`).
UPDATE schedules SET name = 'schedule-' || name WHERE name ~ '^[0-9]+$';
