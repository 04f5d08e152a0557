/** Confines user-supplied relative paths to a root directory (the file store). */
import { isAbsolute, relative, resolve, sep } from 'node:path';

/** Raised for a path that is absolute or climbs out of the root. */
export class UnsafePathError extends Error {
  constructor(path: string) {
    super(`"${path}" must be a relative path inside the file store`);
    this.name = 'UnsafePathError';
  }
}

/** The absolute path of `userPath` inside `root`; throws {@link UnsafePathError} if it escapes. */
export function resolveInside(root: string, userPath: string): string {
  if (userPath.length === 0 || userPath.includes('\0') || isAbsolute(userPath) || /^[a-zA-Z]:/.test(userPath) || userPath.includes('\\')) {
    throw new UnsafePathError(userPath);
  }
  const base = resolve(root);
  const full = resolve(base, userPath);
  const rel = relative(base, full);
  if (rel === '' || isAbsolute(rel) || rel.split(sep).includes('..')) {
    throw new UnsafePathError(userPath);
  }
  return full;
}
