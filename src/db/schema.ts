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

/** Every table Kysely knows about. */
export interface Schema {
  settings: SettingsTable;
  users: UsersTable;
  refresh_tokens: RefreshTokensTable;
  revoked_access_tokens: RevokedAccessTokensTable;
  login_failures: LoginFailuresTable;
  audit_log: AuditLogTable;
}

/** The application's database handle. */
export type Db = Kysely<Schema>;
/** A database handle or an open transaction: what repos accept. */
export type Queryable = Kysely<Schema> | Transaction<Schema>;

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type AuditRow = Selectable<AuditLogTable>;
