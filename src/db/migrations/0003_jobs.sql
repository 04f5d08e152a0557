-- Jobs, runs and their per-target, per-step results.

create table jobs (
  id integer generated always as identity primary key,
  name text not null,
  description text not null default '',
  status text not null default 'active' check (status in ('active', 'inactive')),
  steps jsonb not null,
  parameters jsonb not null default '{}'::jsonb,
  concurrency integer not null default 50 check (concurrency between 1 and 10000),
  allow_concurrent_runs boolean not null default false,
  timeout_s integer not null default 3600 check (timeout_s between 1 and 604800),
  notify jsonb,
  created_by integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index jobs_name_key on jobs (lower(name));
create index jobs_status_idx on jobs (status);
