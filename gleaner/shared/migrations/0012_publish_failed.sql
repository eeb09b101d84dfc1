-- A publish the broker did not confirm (RabbitMQ down, a nack, no confirm in time) marks its row, and the relay
-- publishes such rows as soon as the broker is back instead of after GLEANER_RELAY_GRACE_S (the grace protects
-- rows whose writer may still be publishing them; a failed publish has no writer left). A confirmed publish
-- clears the mark. A writer that crashed before publishing leaves no mark: the grace still covers its rows.
SET LOCAL lock_timeout = '5s';
ALTER TABLE jobs ADD COLUMN publish_failed boolean NOT NULL DEFAULT false;
