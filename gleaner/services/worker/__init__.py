"""The worker: consumes job queues, runs handlers, records outcomes, retries through the delay levels."""
