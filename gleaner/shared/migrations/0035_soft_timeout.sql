-- A job's soft time limit (seed 003's task_soft_time_limit): the worker raises gleaner.SoftTimeLimitExceeded in
-- the handler after this many seconds, before the hard `timeout_s`. NULL: the kind's default, else none.
SET LOCAL lock_timeout = '5s';
ALTER TABLE jobs ADD COLUMN soft_timeout_s float8;
