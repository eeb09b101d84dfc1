-- Polite crawling (issue 16): robots.txt obeyed per site, the server's Retry-After and an exponential backoff
-- pausing the whole site on every worker, optional adaptive throttling, conditional requests, egress proxies.
SET LOCAL lock_timeout = '5s';

ALTER TABLE sites
    -- "obey": a URL robots.txt disallows for the site's user agent is never requested; "ignore": not read
    ADD COLUMN robots text NOT NULL DEFAULT 'obey' CHECK (robots IN ('obey', 'ignore')),
    -- the spacing follows the site's latency and errors (AutoThrottle-like), never faster than the policy
    ADD COLUMN adaptive boolean NOT NULL DEFAULT false,
    -- egress proxies by reference ("env:NAME" or "file:/path"), used in rotation; never stored in clear
    ADD COLUMN proxies text[] NOT NULL DEFAULT '{}' CHECK (cardinality(proxies) <= 32),
    -- live state: no request of the site before backoff_until (a 429/503's Retry-After, or exponential
    -- after `backoff_failures` such answers in a row); backoffs counts them all
    ADD COLUMN backoff_until timestamptz,
    ADD COLUMN backoff_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN backoffs bigint NOT NULL DEFAULT 0,
    -- the adaptive spacing between requests (NULL: not adaptive, or nothing measured yet)
    ADD COLUMN adaptive_delay_s double precision,
    -- body bytes a 304 Not Modified did not send again (the size of the stored copy)
    ADD COLUMN bytes_saved bigint NOT NULL DEFAULT 0,
    ADD COLUMN robots_blocked bigint NOT NULL DEFAULT 0;

-- robots.txt per site and origin (scheme://host:port), shared by all workers until expires_at
CREATE TABLE site_robots (
    site          text        NOT NULL REFERENCES sites (name) ON DELETE CASCADE,
    origin        text        NOT NULL,
    -- the HTTP status of /robots.txt; 0: unreachable (every path disallowed until expires_at)
    status        integer     NOT NULL,
    body          text        NOT NULL,
    crawl_delay_s double precision,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (site, origin)
);

-- the validators a later fetch of the URL sends back (If-None-Match / If-Modified-Since), and why a page has
-- no fetch: blocked_by_robots rows have status 0 and no body
ALTER TABLE scrape_results
    ADD COLUMN etag text,
    ADD COLUMN last_modified text,
    ADD COLUMN blocked_by_robots boolean NOT NULL DEFAULT false;

DROP VIEW site_status;
CREATE VIEW site_status AS
SELECT s.*,
       CASE WHEN s.tokens IS NULL THEN s.burst::float8
            ELSE LEAST(s.burst::float8, s.tokens
                       + EXTRACT(EPOCH FROM (now() - s.refilled_at)) * s.requests_per_hour / 3600.0) END
           AS tokens_left,
       GREATEST(now(), s.next_request_at, s.backoff_until) AS next_allowed_at,
       (SELECT count(*) FROM site_slots AS sl WHERE sl.site = s.name AND sl.expires_at > now()) AS slots_held,
       (SELECT count(*) FROM jobs AS j WHERE j.site = s.name AND j.state = 'running') AS running_jobs,
       (SELECT max(r.crawl_delay_s) FROM site_robots AS r WHERE r.site = s.name AND r.expires_at > now())
           AS crawl_delay_s,
       (SELECT min(r.fetched_at) FROM site_robots AS r WHERE r.site = s.name AND r.expires_at > now())
           AS robots_fetched_at
FROM sites AS s;
