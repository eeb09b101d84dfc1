"""Schedules as both the gateway API and the scheduler use them: definitions, planning, storage, firing, status."""
