/**
 * Which log fields hold secrets. pino removes or masks these paths before a line is written, so
 * passwords, tokens and keys never reach a log whatever a caller passes in.
 */

/** Keys whose values are secret wherever they appear (one or two levels deep). */
export const SECRET_KEYS = [
  'password',
  'new_password',
  'current_password',
  'passphrase',
  'private_key',
  'access_token',
  'refresh_token',
  'token',
  'secret',
  'jwtSecret',
  'adminPassword',
  'master_key',
] as const;

/** pino `redact.paths` covering headers and the secret keys above. */
export function logRedactPaths(): string[] {
  const paths = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'headers.authorization'];
  for (const key of SECRET_KEYS) {
    paths.push(key, `*.${key}`, `*.*.${key}`);
  }
  return paths;
}
