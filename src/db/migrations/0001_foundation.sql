-- Foundation: settings, users, tokens, login throttling, audit log.

create table settings (
  key text primary key,
  value jsonb,
  secret_ciphertext text,
  updated_at timestamptz not null default now()
);

create table users (
  id integer generated always as identity primary key,
  username text not null,
  email text not null,
  password_hash text not null,
  role text not null check (role in ('admin', 'operator', 'viewer')),
  is_active boolean not null default true,
  token_version integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_login_at timestamptz
);
create unique index users_username_key on users (lower(username));
create unique index users_email_key on users (lower(email));

-- One row per issued refresh token; `family` is the login session it belongs to.
create table refresh_tokens (
  jti uuid primary key,
  user_id integer not null references users (id) on delete cascade,
  family uuid not null,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  replaced_by uuid
);
create index refresh_tokens_family_idx on refresh_tokens (family);
create index refresh_tokens_expires_idx on refresh_tokens (expires_at);

-- Access tokens revoked by logout, kept until they would have expired anyway.
create table revoked_access_tokens (
  jti uuid primary key,
  expires_at timestamptz not null
);

create table login_failures (
  id integer generated always as identity primary key,
  username text not null, -- lower-cased
  ip text not null,
  at timestamptz not null default now()
);
create index login_failures_username_idx on login_failures (username, at);
create index login_failures_ip_idx on login_failures (ip, at);

create table audit_log (
  id integer generated always as identity primary key,
  at timestamptz not null default now(),
  actor_id integer,
  actor_username text,
  action text not null,
  resource_type text,
  resource_id text,
  ip text,
  request_id text,
  details jsonb not null default '{}'::jsonb
);
create index audit_log_at_idx on audit_log (at desc, id desc);
create index audit_log_actor_idx on audit_log (actor_id, at desc);
create index audit_log_action_idx on audit_log (action, at desc);
