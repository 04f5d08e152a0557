-- Step libraries: what is installed, and every version ever installed (manifest, files and the
-- bundle's SHA-256), so a run keeps the version it was queued with after an upgrade.

create table library_versions (
  library_id text not null,
  version text not null,
  manifest jsonb not null,
  files jsonb not null default '{}'::jsonb,
  sha256 text not null,
  source text not null check (source in ('catalog', 'upload')),
  installed_at timestamptz not null,
  installed_by integer,
  primary key (library_id, version)
);

create table libraries (
  id text primary key,
  installed_version text not null,
  installed_at timestamptz not null,
  installed_by integer,
  foreign key (id, installed_version) references library_versions (library_id, version)
);
