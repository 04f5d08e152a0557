/**
 * Login, token refresh with rotation and reuse detection, logout, and the per-request token
 * check. Failures all look alike to the caller (same 401, same time) and land in the audit log.
 */
import { randomUUID } from 'node:crypto';

import type { Db, Queryable } from '../../db/schema.ts';
import { AuthError, RateLimitError } from '../../errors.ts';
import type { Logger } from '../../logging.ts';
import type { Clock } from '../../shared/clock.ts';
import { generatePassword, hashPassword, verifyPassword } from '../../shared/passwords.ts';
import type { Actor, RequestContext } from '../../shared/roles.ts';
import type { AuditService } from '../audit/index.ts';
import type { AuthRepo, AuthUser } from './auth.repo.ts';
import type { TokenCodec } from './auth.tokens.ts';

/** Login throttling limits. */
export interface ThrottleLimits {
  maxFailuresPerUser: number;
  maxFailuresPerIp: number;
  failureWindowS: number;
}

/** What login and refresh return. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  user: { id: number; username: string; role: AuthUser['role'] };
}

const BAD_LOGIN = 'Invalid username or password';
const BAD_REFRESH = 'Invalid or expired refresh token';

/** Builds the auth service. */
export function createAuthService(deps: {
  db: Db;
  repo: AuthRepo;
  tokens: TokenCodec;
  audit: AuditService;
  clock: Clock;
  logger: Logger;
  limits: ThrottleLimits;
}) {
  const { db, repo, tokens, audit, clock, limits } = deps;
  // Verified against when the user does not exist, so both failures cost one argon2 verify.
  let dummyHash: Promise<string> | undefined;
  const getDummyHash = () => (dummyHash ??= hashPassword(generatePassword()));

  async function issue(user: AuthUser, sessionId: string, q: Queryable): Promise<TokenPair & { refreshJti: string }> {
    const now = clock.now();
    const access = await tokens.signAccess(user.id, user.tokenVersion, sessionId, now);
    const refresh = await tokens.signRefresh(user.id, user.tokenVersion, sessionId, now);
    await repo.insertRefreshToken(q, { jti: refresh.jti, userId: user.id, family: sessionId, expiresAt: refresh.expiresAt });
    return {
      accessToken: access.token,
      refreshToken: refresh.token,
      refreshJti: refresh.jti,
      expiresIn: tokens.accessTtlS,
      user: { id: user.id, username: user.username, role: user.role },
    };
  }

  async function checkThrottle(username: string, ip: string): Promise<void> {
    const now = clock.now();
    const windowMs = limits.failureWindowS * 1000;
    const counts = await repo.countLoginFailures(username, ip, new Date(now.getTime() - windowMs));
    const blockedBy =
      counts.byUser >= limits.maxFailuresPerUser ? counts.oldestUser : counts.byIp >= limits.maxFailuresPerIp ? counts.oldestIp : undefined;
    if (blockedBy) {
      const retryAfter = Math.max(1, Math.ceil((new Date(blockedBy).getTime() + windowMs - now.getTime()) / 1000));
      throw new RateLimitError('Too many failed login attempts; try again later', retryAfter);
    }
  }

  async function failLogin(ctx: RequestContext, username: string, reason: string): Promise<never> {
    const now = clock.now();
    await repo.recordLoginFailure(username, ctx.ip, new Date(now.getTime() - limits.failureWindowS * 1000));
    await audit.record({ ...ctx, username }, 'auth.login_failed', { type: 'user' }, { username, reason });
    throw new AuthError(BAD_LOGIN);
  }

  async function rejectRefresh(ctx: RequestContext, family: string, userId: number, reason: string): Promise<never> {
    await repo.revokeFamily(family, clock.now());
    await audit.record(ctx, 'auth.refresh_reuse', { type: 'user', id: userId }, { reason, session: family });
    throw new AuthError(BAD_REFRESH);
  }

  return {
    /** Exchanges a username and password for tokens. */
    async login(ctx: RequestContext, input: { username: string; password: string }): Promise<TokenPair> {
      await checkThrottle(input.username, ctx.ip);
      const user = await repo.findUserByUsername(input.username);
      const ok = await verifyPassword(user?.passwordHash ?? (await getDummyHash()), input.password);
      if (!user || !ok || !user.isActive) {
        return failLogin(ctx, input.username, !user ? 'unknown_user' : !ok ? 'bad_password' : 'disabled');
      }
      const pair = await issue(user, randomUUID(), db);
      await repo.touchLastLogin(user.id, clock.now());
      await audit.record({ ...ctx, id: user.id, username: user.username }, 'auth.login', { type: 'user', id: user.id });
      return pair;
    },

    /** Rotates a refresh token; presenting a used one revokes its whole family. */
    async refresh(ctx: RequestContext, refreshToken: string): Promise<TokenPair> {
      const claims = await tokens.verifyRefresh(refreshToken, clock.now());
      const row = claims && (await repo.findRefreshToken(claims.jti));
      if (!claims || !row || row.user_id !== claims.userId) {
        throw new AuthError(BAD_REFRESH);
      }
      if (row.replaced_by || row.revoked_at) {
        return rejectRefresh(ctx, row.family, row.user_id, row.replaced_by ? 'reused' : 'revoked');
      }
      const state = await repo.findTokenState(row.user_id, claims.jti);
      if (!state || !state.user.isActive || state.user.tokenVersion !== claims.tokenVersion) {
        await repo.revokeFamily(row.family, clock.now());
        throw new AuthError(BAD_REFRESH);
      }
      const rotated = await db.transaction().execute(async (tx) => {
        const pair = await issue(state.user, row.family, tx);
        return (await repo.consumeRefreshToken(tx, claims.jti, pair.refreshJti, clock.now())) ? pair : undefined;
      });
      if (!rotated) {
        return rejectRefresh(ctx, row.family, row.user_id, 'reused');
      }
      return rotated;
    },

    /** Revokes the presented access token and its whole login session. */
    async logout(actor: Actor): Promise<void> {
      await repo.revokeAccessToken(actor.tokenId, actor.tokenExpiresAt);
      await repo.revokeFamily(actor.sessionId, clock.now());
      await audit.record(actor, 'auth.logout', { type: 'user', id: actor.id });
    },

    /** Checks a bearer header and returns the caller, or throws a 401. */
    async authenticate(authorization: string | undefined, ctx: RequestContext): Promise<Actor> {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
      if (!match?.[1]) {
        throw new AuthError(authorization ? 'Malformed Authorization header; expected "Bearer <token>"' : 'Authentication required');
      }
      const claims = await tokens.verifyAccess(match[1], clock.now());
      const state = claims && (await repo.findTokenState(claims.userId, claims.jti));
      if (!claims || !state || state.revoked || !state.user.isActive || state.user.tokenVersion !== claims.tokenVersion) {
        throw new AuthError('Invalid or expired token');
      }
      const { user } = state;
      return { ...ctx, id: user.id, username: user.username, role: user.role, tokenId: claims.jti, tokenExpiresAt: claims.expiresAt, sessionId: claims.sessionId };
    },

    /** Removes token bookkeeping that can no longer matter. */
    pruneExpired: () => repo.pruneExpired(clock.now()),
  };
}

/** The auth service. */
export type AuthService = ReturnType<typeof createAuthService>;
