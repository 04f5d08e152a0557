-- Notifications: templates (LiquidJS), each notification a row first (the record of delivery,
-- retried from it), and per-user preferences. SMTP settings live in `settings` (key 'smtp'; the
-- password sealed in secret setting 'smtp_password').

create table notification_templates (
  id integer generated always as identity primary key,
  channel text not null check (channel in ('email', 'slack', 'teams', 'webhook')),
  event text not null,
  name text not null,
  subject text not null default '',
  body text not null,
  builtin boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index notification_templates_name_key on notification_templates (lower(name));
create index notification_templates_event_idx on notification_templates (channel, event);

create table notifications (
  id integer generated always as identity primary key,
  channel text not null check (channel in ('email', 'slack', 'teams', 'webhook')),
  destination text not null,
  event text,
  template_id integer references notification_templates (id) on delete set null,
  subject text not null default '',
  body text not null default '',
  payload jsonb not null default '{}'::jsonb,
  secret_credential_id integer,
  run_id integer,
  status text not null default 'queued' check (status in ('queued', 'sending', 'sent', 'failed')),
  attempts integer not null default 0,
  last_error text,
  next_attempt_at timestamptz,
  sending_since timestamptz,
  dedupe_key text,
  created_by integer,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
create unique index notifications_dedupe_key on notifications (dedupe_key);
create index notifications_status_idx on notifications (status, created_at desc);
create index notifications_due_idx on notifications (next_attempt_at) where status in ('queued', 'sending');

create table notification_preferences (
  user_id integer primary key references users (id) on delete cascade,
  channels jsonb not null default '{}'::jsonb,
  events jsonb not null default '{}'::jsonb,
  quiet_hours jsonb,
  updated_at timestamptz not null default now()
);

-- The shipped templates (editable; delete refused): every channel × job event.
insert into notification_templates (channel, event, name, subject, body, builtin) values
  ('email', 'job.started', 'Default job.started (email)', $t$[OpsConductor] {{ job.name }} started (run {{ run.id }})$t$, $t$Job "{{ job.name }}" {{ run.status }} (run {{ run.id }}, {{ run.trigger }}).
{% if run.finished_at %}Started {{ run.started_at }}, finished {{ run.finished_at }} ({{ run.duration_ms }} ms).{% else %}Started {{ run.started_at }}.{% endif %}
{% if run.finished_at %}Targets: {{ run.summary.succeeded }} succeeded, {{ run.summary.failed }} failed, {{ run.summary.unreachable }} unreachable, {{ run.summary.timed_out }} timed out, {{ run.summary.canceled }} canceled.{% endif %}
{{ run.url }}$t$, true),
  ('email', 'job.completed', 'Default job.completed (email)', $t$[OpsConductor] {{ job.name }} completed (run {{ run.id }})$t$, $t$Job "{{ job.name }}" {{ run.status }} (run {{ run.id }}, {{ run.trigger }}).
{% if run.finished_at %}Started {{ run.started_at }}, finished {{ run.finished_at }} ({{ run.duration_ms }} ms).{% else %}Started {{ run.started_at }}.{% endif %}
{% if run.finished_at %}Targets: {{ run.summary.succeeded }} succeeded, {{ run.summary.failed }} failed, {{ run.summary.unreachable }} unreachable, {{ run.summary.timed_out }} timed out, {{ run.summary.canceled }} canceled.{% endif %}
{{ run.url }}$t$, true),
  ('email', 'job.failed', 'Default job.failed (email)', $t$[OpsConductor] {{ job.name }} failed (run {{ run.id }})$t$, $t$Job "{{ job.name }}" {{ run.status }} (run {{ run.id }}, {{ run.trigger }}).
{% if run.finished_at %}Started {{ run.started_at }}, finished {{ run.finished_at }} ({{ run.duration_ms }} ms).{% else %}Started {{ run.started_at }}.{% endif %}
{% if run.finished_at %}Targets: {{ run.summary.succeeded }} succeeded, {{ run.summary.failed }} failed, {{ run.summary.unreachable }} unreachable, {{ run.summary.timed_out }} timed out, {{ run.summary.canceled }} canceled.{% endif %}
{{ run.url }}$t$, true),
  ('email', 'job.canceled', 'Default job.canceled (email)', $t$[OpsConductor] {{ job.name }} was canceled (run {{ run.id }})$t$, $t$Job "{{ job.name }}" {{ run.status }} (run {{ run.id }}, {{ run.trigger }}).
{% if run.finished_at %}Started {{ run.started_at }}, finished {{ run.finished_at }} ({{ run.duration_ms }} ms).{% else %}Started {{ run.started_at }}.{% endif %}
{% if run.finished_at %}Targets: {{ run.summary.succeeded }} succeeded, {{ run.summary.failed }} failed, {{ run.summary.unreachable }} unreachable, {{ run.summary.timed_out }} timed out, {{ run.summary.canceled }} canceled.{% endif %}
{{ run.url }}$t$, true),
  ('slack', 'job.started', 'Default job.started (slack)', $t$[OpsConductor] {{ job.name }} started (run {{ run.id }})$t$, $t$*{{ job.name }}* {{ run.status }} — run {{ run.id }} ({{ run.trigger }})
{% if run.finished_at %}{{ run.summary.succeeded }} succeeded · {{ run.summary.failed }} failed · {{ run.summary.unreachable }} unreachable · {{ run.summary.timed_out }} timed out · {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s{% endif %}$t$, true),
  ('slack', 'job.completed', 'Default job.completed (slack)', $t$[OpsConductor] {{ job.name }} completed (run {{ run.id }})$t$, $t$*{{ job.name }}* {{ run.status }} — run {{ run.id }} ({{ run.trigger }})
{% if run.finished_at %}{{ run.summary.succeeded }} succeeded · {{ run.summary.failed }} failed · {{ run.summary.unreachable }} unreachable · {{ run.summary.timed_out }} timed out · {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s{% endif %}$t$, true),
  ('slack', 'job.failed', 'Default job.failed (slack)', $t$[OpsConductor] {{ job.name }} failed (run {{ run.id }})$t$, $t$*{{ job.name }}* {{ run.status }} — run {{ run.id }} ({{ run.trigger }})
{% if run.finished_at %}{{ run.summary.succeeded }} succeeded · {{ run.summary.failed }} failed · {{ run.summary.unreachable }} unreachable · {{ run.summary.timed_out }} timed out · {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s{% endif %}$t$, true),
  ('slack', 'job.canceled', 'Default job.canceled (slack)', $t$[OpsConductor] {{ job.name }} was canceled (run {{ run.id }})$t$, $t$*{{ job.name }}* {{ run.status }} — run {{ run.id }} ({{ run.trigger }})
{% if run.finished_at %}{{ run.summary.succeeded }} succeeded · {{ run.summary.failed }} failed · {{ run.summary.unreachable }} unreachable · {{ run.summary.timed_out }} timed out · {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s{% endif %}$t$, true),
  ('teams', 'job.started', 'Default job.started (teams)', $t$[OpsConductor] {{ job.name }} started (run {{ run.id }})$t$, $t$*{{ job.name }}* {{ run.status }} — run {{ run.id }} ({{ run.trigger }})
{% if run.finished_at %}{{ run.summary.succeeded }} succeeded · {{ run.summary.failed }} failed · {{ run.summary.unreachable }} unreachable · {{ run.summary.timed_out }} timed out · {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s{% endif %}$t$, true),
  ('teams', 'job.completed', 'Default job.completed (teams)', $t$[OpsConductor] {{ job.name }} completed (run {{ run.id }})$t$, $t$*{{ job.name }}* {{ run.status }} — run {{ run.id }} ({{ run.trigger }})
{% if run.finished_at %}{{ run.summary.succeeded }} succeeded · {{ run.summary.failed }} failed · {{ run.summary.unreachable }} unreachable · {{ run.summary.timed_out }} timed out · {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s{% endif %}$t$, true),
  ('teams', 'job.failed', 'Default job.failed (teams)', $t$[OpsConductor] {{ job.name }} failed (run {{ run.id }})$t$, $t$*{{ job.name }}* {{ run.status }} — run {{ run.id }} ({{ run.trigger }})
{% if run.finished_at %}{{ run.summary.succeeded }} succeeded · {{ run.summary.failed }} failed · {{ run.summary.unreachable }} unreachable · {{ run.summary.timed_out }} timed out · {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s{% endif %}$t$, true),
  ('teams', 'job.canceled', 'Default job.canceled (teams)', $t$[OpsConductor] {{ job.name }} was canceled (run {{ run.id }})$t$, $t$*{{ job.name }}* {{ run.status }} — run {{ run.id }} ({{ run.trigger }})
{% if run.finished_at %}{{ run.summary.succeeded }} succeeded · {{ run.summary.failed }} failed · {{ run.summary.unreachable }} unreachable · {{ run.summary.timed_out }} timed out · {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s{% endif %}$t$, true),
  ('webhook', 'job.started', 'Default job.started (webhook)', $t$$t$, $t${{ job.name }} started$t$, true),
  ('webhook', 'job.completed', 'Default job.completed (webhook)', $t$$t$, $t${{ job.name }} completed$t$, true),
  ('webhook', 'job.failed', 'Default job.failed (webhook)', $t$$t$, $t${{ job.name }} failed$t$, true),
  ('webhook', 'job.canceled', 'Default job.canceled (webhook)', $t$$t$, $t${{ job.name }} was canceled$t$, true);
