/**
 * Kysely table types. Column names are the database's (snake_case); repos map rows to domain
 * types and routes map those to the API's field names.
 */
import type { ColumnType, Generated, Insertable, Kysely, Selectable, Transaction } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T = unknown> = ColumnType<T, string | T, string | T>;

export interface SettingsTable {
  key: string;
  value: Json | null;
  secret_ciphertext: string | null;
  key_id: string | null;
  updated_at: Timestamp;
}

export interface UsersTable {
  id: Generated<number>;
  username: string;
  email: string;
  password_hash: string;
  role: string;
  is_active: Generated<boolean>;
  token_version: Generated<number>;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_login_at: Date | null;
}

export interface RefreshTokensTable {
  jti: string;
  user_id: number;
  family: string;
  expires_at: Date;
  created_at: Timestamp;
  revoked_at: Date | null;
  replaced_by: string | null;
}

export interface RevokedAccessTokensTable {
  jti: string;
  expires_at: Date;
}

export interface LoginFailuresTable {
  id: Generated<number>;
  username: string;
  ip: string;
  at: Timestamp;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: Timestamp;
  actor_id: number | null;
  actor_username: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  ip: string | null;
  request_id: string | null;
  details: Json<Record<string, unknown>>;
}

export interface CredentialsTable {
  id: Generated<number>;
  name: string;
  type: string;
  username: string | null;
  domain: string | null;
  auth: string | null;
  description: Generated<string>;
  secret_ciphertext: string;
  key_id: string;
  secret_fields: Generated<string[]>;
  public_key_fingerprint: string | null;
  certificate_info: Json<Record<string, unknown>> | null;
  created_by: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TargetsTable {
  id: Generated<number>;
  name: string;
  host: string;
  port: number;
  os_type: string;
  protocol: string;
  use_tls: Generated<boolean>;
  credential_id: number | null;
  tags: Generated<string[]>;
  description: Generated<string>;
  status: Generated<string>;
  last_checked_at: Date | null;
  response_time_ms: number | null;
  host_key_fingerprint: string | null;
  tls_verify: Generated<boolean>;
  tls_fingerprint: string | null;
  created_by: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TargetGroupsTable {
  id: Generated<number>;
  name: string;
  description: Generated<string>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TargetGroupMembersTable {
  group_id: number;
  target_id: number;
  added_at: Timestamp;
}

export interface JobsTable {
  id: Generated<number>;
  name: string;
  description: Generated<string>;
  status: Generated<string>;
  steps: Json<Array<Record<string, unknown>>>;
  parameters: Json<Record<string, Record<string, unknown>>>;
  concurrency: Generated<number>;
  allow_concurrent_runs: Generated<boolean>;
  timeout_s: Generated<number>;
  notify: Json | null;
  created_by: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface JobRunsTable {
  id: Generated<number>;
  job_id: number | null;
  job_name: string;
  definition: Json<RunDefinition>;
  status: Generated<string>;
  trigger: string;
  requested_by: number | null;
  schedule_id: number | null;
  retry_of: number | null;
  parameters: Json<Record<string, unknown>>;
  parameters_sealed: string;
  target_ids: number[];
  summary: ColumnType<Record<string, number>, string | undefined, string>;
  cancel_requested: Generated<boolean>;
  running: Generated<number>;
  queued_at: Timestamp;
  started_at: Date | null;
  finished_at: Date | null;
  deadline_at: Date | null;
}

/** The job definition frozen into a run. */
export interface RunDefinition {
  steps: Array<Record<string, unknown>>;
  parameters: Record<string, Record<string, unknown>>;
  concurrency: number;
  timeout_s: number;
}

export interface JobRunTargetsTable {
  run_id: number;
  target_id: number;
  target_name: string | null;
  status: Generated<string>;
  worker_id: string | null;
  lease_until: Date | null;
  error: string | null;
  started_at: Date | null;
  finished_at: Date | null;
}

export interface JobRunStepsTable {
  run_id: number;
  target_id: number;
  step_index: number;
  name: string;
  status: Generated<string>;
  exit_code: number | null;
  stdout: Generated<string>;
  stderr: Generated<string>;
  outputs: ColumnType<Record<string, string>, string | undefined, string>;
  truncated: Generated<boolean>;
  error: string | null;
  attempts: Generated<number>;
  started_at: Date | null;
  finished_at: Date | null;
  duration_ms: number | null;
}

export interface SchedulesTable {
  id: Generated<number>;
  job_id: number;
  name: Generated<string>;
  cron: string;
  timezone: Generated<string>;
  enabled: Generated<boolean>;
  target_ids: ColumnType<number[], number[] | undefined, number[]>;
  group_ids: ColumnType<number[], number[] | undefined, number[]>;
  parameters: Json<Record<string, unknown>>;
  parameters_sealed: string;
  overlap: Generated<string>;
  catchup: Generated<string>;
  next_run_at: Date | null;
  last_run_at: Date | null;
  last_run_id: number | null;
  created_by: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ScheduleFiresTable {
  id: Generated<string>;
  schedule_id: number;
  scheduled_for: Date;
  fired_at: Date;
  outcome: string;
  run_id: number | null;
  error: string | null;
}

export interface RunEventsTable {
  id: Generated<number>;
  run_id: number;
  at: Timestamp;
  type: string;
  target_id: number | null;
  step_index: number | null;
  data: Json<Record<string, unknown>>;
}

export interface NotificationTemplatesTable {
  id: Generated<number>;
  channel: string;
  event: string;
  name: string;
  subject: Generated<string>;
  body: string;
  builtin: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface NotificationsTable {
  id: Generated<number>;
  channel: string;
  destination: string;
  event: string | null;
  template_id: number | null;
  subject: Generated<string>;
  body: Generated<string>;
  payload: Json<Record<string, unknown>>;
  secret_credential_id: number | null;
  run_id: number | null;
  status: Generated<string>;
  attempts: Generated<number>;
  last_error: string | null;
  next_attempt_at: Date | null;
  sending_since: Date | null;
  dedupe_key: string | null;
  created_by: number | null;
  created_at: Timestamp;
  sent_at: Date | null;
}

export interface NotificationPreferencesTable {
  user_id: number;
  channels: Json<Record<string, unknown>>;
  events: Json<Record<string, boolean>>;
  quiet_hours: Json<{ start: string; end: string; timezone: string } | null> | null;
  updated_at: Timestamp;
}

export interface DiscoveryJobsTable {
  id: Generated<number>;
  name: Generated<string>;
  network_range: string;
  ports: number[];
  scanner: Generated<string>;
  status: Generated<string>;
  progress: Generated<number>;
  summary: ColumnType<Record<string, unknown>, string | undefined, string>;
  error: string | null;
  cancel_requested: Generated<boolean>;
  heartbeat_at: Date | null;
  created_by: number | null;
  created_at: Timestamp;
  started_at: Date | null;
  finished_at: Date | null;
}

export interface DiscoveredHostsTable {
  id: Generated<number>;
  job_id: number;
  host: string;
  hostname: string | null;
  os: Generated<string>;
  os_hint: string | null;
  services: Json<string[]>;
  ports: Json<Array<{ port: number; service: string; banner: string | null }>>;
  import_status: Generated<string>;
  target_id: number | null;
}

export interface LibraryVersionsTable {
  library_id: string;
  version: string;
  manifest: Json<Record<string, unknown>>;
  /** Relative path → base64 content. */
  files: Json<Record<string, string>>;
  sha256: string;
  source: string;
  installed_at: Date;
  installed_by: number | null;
}

export interface LibrariesTable {
  id: string;
  installed_version: string;
  installed_at: Date;
  installed_by: number | null;
}

/** Every table Kysely knows about. */
export interface Schema {
  settings: SettingsTable;
  users: UsersTable;
  refresh_tokens: RefreshTokensTable;
  revoked_access_tokens: RevokedAccessTokensTable;
  login_failures: LoginFailuresTable;
  audit_log: AuditLogTable;
  credentials: CredentialsTable;
  targets: TargetsTable;
  target_groups: TargetGroupsTable;
  target_group_members: TargetGroupMembersTable;
  jobs: JobsTable;
  job_runs: JobRunsTable;
  job_run_targets: JobRunTargetsTable;
  job_run_steps: JobRunStepsTable;
  run_events: RunEventsTable;
  schedules: SchedulesTable;
  schedule_fires: ScheduleFiresTable;
  notification_templates: NotificationTemplatesTable;
  notifications: NotificationsTable;
  notification_preferences: NotificationPreferencesTable;
  discovery_jobs: DiscoveryJobsTable;
  discovered_hosts: DiscoveredHostsTable;
  libraries: LibrariesTable;
  library_versions: LibraryVersionsTable;
}

/** The application's database handle. */
export type Db = Kysely<Schema>;
/** A database handle or an open transaction: what repos accept. */
export type Queryable = Kysely<Schema> | Transaction<Schema>;

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type AuditRow = Selectable<AuditLogTable>;
export type CredentialRow = Selectable<CredentialsTable>;
export type TargetRow = Selectable<TargetsTable>;
export type TargetGroupRow = Selectable<TargetGroupsTable>;
export type JobRow = Selectable<JobsTable>;
export type JobRunRow = Selectable<JobRunsTable>;
export type JobRunTargetRow = Selectable<JobRunTargetsTable>;
export type JobRunStepRow = Selectable<JobRunStepsTable>;
export type RunEventRow = Selectable<RunEventsTable>;
export type ScheduleRow = Selectable<SchedulesTable>;
export type ScheduleFireRow = Selectable<ScheduleFiresTable>;
export type NotificationTemplateRow = Selectable<NotificationTemplatesTable>;
export type NotificationRow = Selectable<NotificationsTable>;
export type NotificationPreferencesRow = Selectable<NotificationPreferencesTable>;
export type DiscoveryJobRow = Selectable<DiscoveryJobsTable>;
export type DiscoveredHostRow = Selectable<DiscoveredHostsTable>;
export type LibraryRow = Selectable<LibrariesTable>;
export type LibraryVersionRow = Selectable<LibraryVersionsTable>;
