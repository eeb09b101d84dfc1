-- Paused queues: workers stop consuming a queue listed here (jobs already delivered finish); its messages
-- wait in RabbitMQ until it is resumed. Written by POST /queues/{name}/pause and /resume.
CREATE TABLE queue_pauses (
    queue     text        PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now(),
    reason    text
);
