"""The scheduler: leader election, outbox relay, lease reaper, pruning (and, later, schedules)."""
