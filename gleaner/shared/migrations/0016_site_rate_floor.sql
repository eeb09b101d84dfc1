-- A site rate below one request per 100 hours put a job's next turn centuries away (1e-9 an hour: the year
-- 116106, past what any job view can show). Rates are floored at 0.01 an hour, here and in the API.
SET LOCAL lock_timeout = '5s';
UPDATE sites SET requests_per_hour = 0.01 WHERE requests_per_hour < 0.01;
ALTER TABLE sites DROP CONSTRAINT sites_requests_per_hour_check,
    ADD CONSTRAINT sites_requests_per_hour_check CHECK (requests_per_hour >= 0.01);
