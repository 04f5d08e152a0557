-- Inventory: credentials (sealed secrets), targets, target groups.

alter table settings add column key_id text;

create table credentials (
  id integer generated always as identity primary key,
  name text not null,
  type text not null check (type in ('ssh', 'winrm', 'password', 'api_token', 'certificate')),
  username text,
  domain text,
  auth text check (auth in ('ntlm', 'basic')),
  description text not null default '',
  -- Every secret field of the record, as one sealed JSON envelope (see shared/crypto-box.ts).
  secret_ciphertext text not null,
  key_id text not null,
  -- Names of the secret fields present (password, private_key, passphrase, token, certificate).
  secret_fields text[] not null default '{}',
  public_key_fingerprint text,
  certificate_info jsonb,
  created_by integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index credentials_name_key on credentials (lower(name));
create index credentials_key_id_idx on credentials (key_id);

create table targets (
  id integer generated always as identity primary key,
  name text not null,
  host text not null,
  port integer not null check (port between 1 and 65535),
  os_type text not null check (os_type in ('linux', 'windows', 'unix', 'macos', 'network', 'other')),
  protocol text not null check (protocol in ('ssh', 'winrm', 'http')),
  use_tls boolean not null default false,
  credential_id integer references credentials (id) on delete restrict,
  tags text[] not null default '{}',
  description text not null default '',
  status text not null default 'unknown' check (status in ('unknown', 'online', 'offline', 'auth_failed', 'host_key_mismatch')),
  last_checked_at timestamptz,
  response_time_ms integer,
  host_key_fingerprint text,
  created_by integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index targets_name_key on targets (lower(name));
create index targets_credential_idx on targets (credential_id);
create index targets_tags_idx on targets using gin (tags);

create table target_groups (
  id integer generated always as identity primary key,
  name text not null,
  description text not null default '',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index target_groups_name_key on target_groups (lower(name));

create table target_group_members (
  group_id integer not null references target_groups (id) on delete cascade,
  target_id integer not null references targets (id) on delete cascade,
  added_at timestamptz not null default now(),
  primary key (group_id, target_id)
);
create index target_group_members_target_idx on target_group_members (target_id);

-- The JWT secret moves from plain settings.value into a sealed envelope.
delete from settings where key = 'jwt_secret' and secret_ciphertext is null;
