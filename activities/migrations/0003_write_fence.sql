-- 0003: the fence of local event writes. write_case_events (a local activity,
-- run inside the workflow task) records in write_fence the history length of
-- the workflow task that wrote last, within cases.run_id: a write from an
-- older attempt of a lost workflow task can then never overwrite what a newer
-- attempt wrote. 0: written by record_case_events (a regular activity), or never.

ALTER TABLE cases ADD COLUMN write_fence bigint NOT NULL DEFAULT 0;
