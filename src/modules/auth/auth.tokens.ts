/**
 * JWTs (HS256 via jose). Access tokens live 15 minutes, refresh tokens 7 days; both carry the
 * user's token_version (`ver`) and the login session (`sid`, the refresh token family).
 */
import { randomUUID } from 'node:crypto';

import { jwtVerify, SignJWT } from 'jose';

const ISSUER = 'opsconductor';

/** Claims we put in both token kinds. */
export interface TokenClaims {
  userId: number;
  tokenVersion: number;
  sessionId: string;
  jti: string;
  expiresAt: Date;
}

/** A freshly signed token. */
export interface SignedToken extends TokenClaims {
  token: string;
}

type Kind = 'access' | 'refresh';

/** Builds the signer/verifier for a secret and the two lifetimes (seconds). */
export function createTokenCodec(secret: string, ttl: { accessS: number; refreshS: number }) {
  const key = new TextEncoder().encode(secret);

  async function sign(kind: Kind, userId: number, tokenVersion: number, sessionId: string, now: Date): Promise<SignedToken> {
    const jti = randomUUID();
    const iat = Math.floor(now.getTime() / 1000);
    const exp = iat + (kind === 'access' ? ttl.accessS : ttl.refreshS);
    const token = await new SignJWT({ typ: kind, ver: tokenVersion, sid: sessionId })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setSubject(String(userId))
      .setJti(jti)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(key);
    return { token, userId, tokenVersion, sessionId, jti, expiresAt: new Date(exp * 1000) };
  }

  /** Verifies signature, expiry and kind; returns undefined for anything invalid. */
  async function verify(kind: Kind, token: string, now: Date): Promise<TokenClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, key, { issuer: ISSUER, algorithms: ['HS256'], currentDate: now });
      const userId = Number(payload.sub);
      if (payload.typ !== kind || !Number.isInteger(userId) || typeof payload.ver !== 'number' || typeof payload.sid !== 'string' || !payload.jti) {
        return undefined;
      }
      return { userId, tokenVersion: payload.ver, sessionId: payload.sid, jti: payload.jti, expiresAt: new Date((payload.exp ?? 0) * 1000) };
    } catch {
      return undefined;
    }
  }

  return {
    signAccess: (userId: number, version: number, sessionId: string, now: Date) => sign('access', userId, version, sessionId, now),
    signRefresh: (userId: number, version: number, sessionId: string, now: Date) => sign('refresh', userId, version, sessionId, now),
    verifyAccess: (token: string, now: Date) => verify('access', token, now),
    verifyRefresh: (token: string, now: Date) => verify('refresh', token, now),
    accessTtlS: ttl.accessS,
  };
}

/** The token codec. */
export type TokenCodec = ReturnType<typeof createTokenCodec>;
