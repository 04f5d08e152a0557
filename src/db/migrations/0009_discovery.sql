-- Network discovery: scan jobs (run as background tasks) and the hosts they found, with what
-- became of each on import.

create table discovery_jobs (
  id integer generated always as identity primary key,
  name text not null default '',
  network_range text not null,
  ports integer[] not null,
  scanner text not null default 'builtin' check (scanner in ('builtin', 'nmap')),
  status text not null default 'queued' check (status in ('queued', 'running', 'completed', 'failed', 'canceled')),
  progress integer not null default 0 check (progress between 0 and 100),
  summary jsonb not null default '{}'::jsonb,
  error text,
  cancel_requested boolean not null default false,
  -- Renewed by the worker scanning it; a running job whose heartbeat stops was lost with its worker.
  heartbeat_at timestamptz,
  created_by integer,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);
create index discovery_jobs_status_idx on discovery_jobs (status);

create table discovered_hosts (
  id integer generated always as identity primary key,
  job_id integer not null references discovery_jobs (id) on delete cascade,
  host text not null,
  hostname text,
  os text not null default 'unknown',
  os_hint text,
  services jsonb not null default '[]'::jsonb,
  ports jsonb not null default '[]'::jsonb,
  import_status text not null default 'new' check (import_status in ('new', 'imported', 'skipped')),
  target_id integer,
  unique (job_id, host)
);
