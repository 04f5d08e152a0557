-- Job runs: one row per run, per run-target and per run-target-step, plus the run's event log.

create table job_runs (
  id integer generated always as identity primary key,
  job_id integer references jobs (id) on delete set null,
  job_name text not null,
  -- The definition the run was queued with: later edits of the job do not change a queued run.
  definition jsonb not null,
  status text not null default 'queued' check (status in ('queued', 'running', 'completed', 'failed', 'canceled', 'timed_out')),
  trigger text not null check (trigger in ('manual', 'schedule', 'api', 'retry')),
  requested_by integer,
  schedule_id integer,
  retry_of integer,
  -- Shown values (secret parameters as ***) and the real values, sealed.
  parameters jsonb not null default '{}'::jsonb,
  parameters_sealed text not null,
  target_ids integer[] not null default '{}',
  summary jsonb not null default '{}'::jsonb,
  cancel_requested boolean not null default false,
  queued_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  deadline_at timestamptz
);
create index job_runs_job_idx on job_runs (job_id, id desc);
create index job_runs_active_idx on job_runs (status) where status in ('queued', 'running');

-- target_id 0 stands for "no target" (jobs made only of http/webhook steps).
create table job_run_targets (
  run_id integer not null references job_runs (id) on delete cascade,
  target_id integer not null,
  target_name text,
  status text not null default 'pending' check (status in ('pending', 'running', 'succeeded', 'failed', 'unreachable', 'timed_out', 'canceled', 'skipped')),
  worker_id text,
  lease_until timestamptz,
  error text,
  started_at timestamptz,
  finished_at timestamptz,
  primary key (run_id, target_id)
);
create index job_run_targets_running_idx on job_run_targets (lease_until) where status = 'running';

create table job_run_steps (
  run_id integer not null references job_runs (id) on delete cascade,
  target_id integer not null,
  step_index integer not null,
  name text not null,
  status text not null default 'pending' check (status in ('pending', 'running', 'succeeded', 'failed', 'timed_out', 'canceled', 'skipped')),
  exit_code integer,
  stdout text not null default '',
  stderr text not null default '',
  outputs jsonb not null default '{}'::jsonb,
  truncated boolean not null default false,
  error text,
  attempts integer not null default 0,
  started_at timestamptz,
  finished_at timestamptz,
  duration_ms integer,
  primary key (run_id, target_id, step_index)
);

create table run_events (
  id integer generated always as identity primary key,
  run_id integer not null references job_runs (id) on delete cascade,
  at timestamptz not null default now(),
  type text not null,
  target_id integer,
  step_index integer,
  data jsonb not null default '{}'::jsonb
);
create index run_events_run_idx on run_events (run_id, id);
