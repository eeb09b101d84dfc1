-- PATCH /jobs/{id} changes a waiting job's priority or run_at: the message already in RabbitMQ carries the old
-- priority or delay, so the change bumps the row's generation and publishes a new message through the outbox;
-- a claim is fenced on the generation too, so the old message is dropped (a message without one is generation 0).
SET LOCAL lock_timeout = '5s';
ALTER TABLE jobs ADD COLUMN generation integer NOT NULL DEFAULT 0;
