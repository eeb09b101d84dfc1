-- A schedule's job template may fan out (`fan_out: {"key", "values"}`): one job per value and slot. Each
-- slot still fires once: the uniqueness moves from (schedule, slot) to (schedule, slot, fan-out index).
ALTER TABLE jobs ADD COLUMN fan_index integer NOT NULL DEFAULT 0;
ALTER TABLE jobs DROP CONSTRAINT jobs_schedule_id_scheduled_for_key;
ALTER TABLE jobs ADD CONSTRAINT jobs_schedule_slot_fan UNIQUE (schedule_id, scheduled_for, fan_index);
