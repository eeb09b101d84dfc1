-- Per-minute site counters, so GET /stats can count requests, rate-limit waits and deferrals in a window
-- (the totals on `sites` count since the site was created). One row per site and minute with traffic.
CREATE TABLE site_minutes (
    site             text        NOT NULL REFERENCES sites (name) ON DELETE CASCADE,
    minute           timestamptz NOT NULL,
    requests         bigint      NOT NULL DEFAULT 0,
    rate_limit_waits bigint      NOT NULL DEFAULT 0,
    deferrals        bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (site, minute)
);

-- the pruner deletes by age across sites
CREATE INDEX site_minutes_minute ON site_minutes (minute);
