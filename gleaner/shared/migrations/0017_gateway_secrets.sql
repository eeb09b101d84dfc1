-- Secrets every gateway replica shares, made once here so no configuration is needed: the key that signs page
-- tokens (a token is then opaque and cannot be forged; before, its filter hash was computable and its `last`
-- reached PostgreSQL unbounded). 244 random bits from two random UUIDs.
CREATE TABLE gateway_secrets (
    name       text        PRIMARY KEY,
    secret     bytea       NOT NULL CHECK (length(secret) >= 16),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO gateway_secrets (name, secret)
VALUES ('page_tokens', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
