-- Cron schedules of jobs and the record of every time one fired (or did not), unique per
-- (schedule, scheduled time): a fire is recorded in the transaction that queues its run and
-- advances next_run_at, so no two schedulers can fire the same time twice.

create table schedules (
  id integer generated always as identity primary key,
  job_id integer not null references jobs (id) on delete cascade,
  name text not null default '',
  cron text not null,
  timezone text not null default 'UTC',
  enabled boolean not null default true,
  target_ids integer[] not null default '{}',
  group_ids integer[] not null default '{}',
  parameters jsonb not null default '{}'::jsonb,
  parameters_sealed text not null,
  overlap text not null default 'skip' check (overlap in ('skip', 'queue', 'allow')),
  catchup text not null default 'none' check (catchup in ('none', 'latest', 'all')),
  next_run_at timestamptz,
  last_run_at timestamptz,
  last_run_id integer,
  created_by integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index schedules_job_idx on schedules (job_id);
create index schedules_due_idx on schedules (next_run_at) where enabled;

create table schedule_fires (
  id bigint generated always as identity primary key,
  schedule_id integer not null references schedules (id) on delete cascade,
  scheduled_for timestamptz not null,
  fired_at timestamptz not null,
  outcome text not null check (outcome in ('queued', 'waiting', 'skipped_overlap', 'skipped_inactive', 'missed', 'failed')),
  run_id integer,
  error text,
  unique (schedule_id, scheduled_for)
);
create index schedule_fires_waiting_idx on schedule_fires (schedule_id, scheduled_for) where outcome = 'waiting';
