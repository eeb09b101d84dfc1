-- Webhooks (issue 15): where to POST which events, signed with the webhook's secret. The secret is kept as given
-- (the worker needs it to sign) and never returned by the API. A delivery is an ordinary job of kind
-- `webhook.deliver`; `webhook_deliveries` makes the gateway replicas (each sees every event) insert it once.
CREATE TABLE webhooks (
    id          bigserial   PRIMARY KEY,
    url         text        NOT NULL,
    filter      jsonb       NOT NULL DEFAULT '{}',
    secret      text        NOT NULL CHECK (length(secret) >= 16),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE webhook_deliveries (
    webhook_id bigint      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_key  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (webhook_id, event_key)
);
CREATE INDEX webhook_deliveries_created_at ON webhook_deliveries (created_at);
-- A stream's catch-up after a `resync` (`GET /jobs?updated_after=`) reads the rows changed since its last event.
-- Every job update already changes an indexed column (state, lease), so this index costs no HOT update.
CREATE INDEX jobs_updated_at ON jobs (updated_at);
