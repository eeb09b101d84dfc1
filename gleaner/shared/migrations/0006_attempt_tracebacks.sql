-- The traceback of the error that ended an attempt (its last 8,000 characters), shown with the attempt history.
ALTER TABLE job_attempts ADD COLUMN error_traceback text;
