-- Per-run count of run-targets in flight: claims check and bump it in one statement, so the
-- run's concurrency holds across workers without a lock held over client round trips.
alter table job_runs add column running integer not null default 0;
