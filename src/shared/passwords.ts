/** Password hashing: argon2id with the library's OWASP-level defaults. */
import { randomBytes } from 'node:crypto';

import { hash, verify } from '@node-rs/argon2';

/** `Algorithm.Argon2id` (a const enum the package exports only as a type). */
const ARGON2ID = 2;

/** Hashes `password` with argon2id. */
export function hashPassword(password: string): Promise<string> {
  return hash(password, { algorithm: ARGON2ID });
}

/** True when `password` matches `passwordHash`; false (never a throw) for a malformed hash. */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

/** A random password of 24 URL-safe characters (≈ 144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
