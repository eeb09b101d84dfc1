-- A blocked job (issue 14: it waits for its dependencies) is unfinished: it keeps holding its dedupe key, as a
-- scheduled or queued job does. Before this, a job turned blocked in its own inserting transaction left the
-- index, so a second submission with the same key was accepted while the first waited.
SET LOCAL lock_timeout = '5s';

DROP INDEX jobs_dedupe;
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running', 'retrying', 'blocked');
