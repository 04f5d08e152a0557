/**
 * SQL for authentication: refresh tokens, revoked access tokens, login failures, and the
 * read-only user lookups login and token checks need (auth is the authority on credentials; the
 * users module owns every write to `users`).
 */
import { sql } from 'kysely';

import type { Queryable } from '../../db/schema.ts';
import type { Role } from '../../shared/roles.ts';

/** What login and token checks need to know about a user. */
export interface AuthUser {
  id: number;
  username: string;
  role: Role;
  isActive: boolean;
  tokenVersion: number;
  passwordHash: string;
}

const authUserColumns = ['id', 'username', 'role', 'is_active', 'token_version', 'password_hash'] as const;

function toAuthUser(row: { id: number; username: string; role: string; is_active: boolean; token_version: number; password_hash: string }): AuthUser {
  return {
    id: row.id,
    username: row.username,
    role: row.role as Role,
    isActive: row.is_active,
    tokenVersion: row.token_version,
    passwordHash: row.password_hash,
  };
}

/** Builds the auth repository over `db`. */
export function createAuthRepo(db: Queryable) {
  return {
    async findUserByUsername(username: string): Promise<AuthUser | undefined> {
      const row = await db.selectFrom('users').select(authUserColumns).where(sql`lower(username)`, '=', username.toLowerCase()).executeTakeFirst();
      return row && toAuthUser(row);
    },

    /** The user behind a token plus whether that access token was revoked — one round trip. */
    async findTokenState(userId: number, jti: string): Promise<{ user: AuthUser; revoked: boolean } | undefined> {
      const row = await db
        .selectFrom('users')
        .select(authUserColumns)
        .select((eb) => eb.exists(eb.selectFrom('revoked_access_tokens').select('jti').where('jti', '=', jti)).as('revoked'))
        .where('id', '=', userId)
        .executeTakeFirst();
      return row && { user: toAuthUser(row), revoked: Boolean(row.revoked) };
    },

    async touchLastLogin(userId: number, at: Date): Promise<void> {
      await db.updateTable('users').set({ last_login_at: at }).where('id', '=', userId).execute();
    },

    async insertRefreshToken(q: Queryable, row: { jti: string; userId: number; family: string; expiresAt: Date }): Promise<void> {
      await q.insertInto('refresh_tokens').values({ jti: row.jti, user_id: row.userId, family: row.family, expires_at: row.expiresAt }).execute();
    },

    async findRefreshToken(jti: string) {
      return db.selectFrom('refresh_tokens').selectAll().where('jti', '=', jti).executeTakeFirst();
    },

    /** Marks `jti` used, only if still unused; false means someone used it first. */
    async consumeRefreshToken(q: Queryable, jti: string, replacedBy: string, at: Date): Promise<boolean> {
      const result = await q
        .updateTable('refresh_tokens')
        .set({ replaced_by: replacedBy, revoked_at: at })
        .where('jti', '=', jti)
        .where('replaced_by', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async revokeFamily(family: string, at: Date): Promise<void> {
      await db.updateTable('refresh_tokens').set({ revoked_at: at }).where('family', '=', family).where('revoked_at', 'is', null).execute();
    },

    async revokeAccessToken(jti: string, expiresAt: Date): Promise<void> {
      await db.insertInto('revoked_access_tokens').values({ jti, expires_at: expiresAt }).onConflict((oc) => oc.column('jti').doNothing()).execute();
    },

    /** Drops expired token rows (kept only while they could still be presented). */
    async pruneExpired(now: Date): Promise<void> {
      await db.deleteFrom('revoked_access_tokens').where('expires_at', '<', now).execute();
      await db.deleteFrom('refresh_tokens').where('expires_at', '<', now).execute();
    },

    async recordLoginFailure(username: string, ip: string, cutoff: Date): Promise<void> {
      await db.insertInto('login_failures').values({ username: username.toLowerCase(), ip }).execute();
      await db.deleteFrom('login_failures').where('at', '<', cutoff).execute();
    },

    /** Failures since `since` for the username and for the IP, with the oldest of each. */
    async countLoginFailures(username: string, ip: string, since: Date) {
      const row = await db
        .selectFrom('login_failures')
        .select([
          sql<number>`count(*) filter (where username = ${username.toLowerCase()})::int`.as('by_user'),
          sql<Date | null>`min(at) filter (where username = ${username.toLowerCase()})`.as('oldest_user'),
          sql<number>`count(*) filter (where ip = ${ip})::int`.as('by_ip'),
          sql<Date | null>`min(at) filter (where ip = ${ip})`.as('oldest_ip'),
        ])
        .where('at', '>=', since)
        .where((eb) => eb.or([eb('username', '=', username.toLowerCase()), eb('ip', '=', ip)]))
        .executeTakeFirstOrThrow();
      return { byUser: row.by_user, oldestUser: row.oldest_user, byIp: row.by_ip, oldestIp: row.oldest_ip };
    },
  };
}

/** The auth repository. */
export type AuthRepo = ReturnType<typeof createAuthRepo>;
