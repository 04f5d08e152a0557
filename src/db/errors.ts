/** Maps PostgreSQL errors to domain errors (unique violations become 409s naming the field). */
import { ConflictError } from '../errors.ts';

interface PgError {
  code?: string;
  constraint?: string;
}

/** True when `e` is a PostgreSQL unique violation (23505). */
export function isUniqueViolation(e: unknown): e is PgError {
  return typeof e === 'object' && e !== null && (e as PgError).code === '23505';
}

/**
 * Rethrows a unique violation as a {@link ConflictError}; `fields` maps constraint (index) names
 * to the API field they protect. Anything else is rethrown unchanged.
 */
export function rethrowConflict(e: unknown, fields: Record<string, string>, what: string): never {
  if (isUniqueViolation(e)) {
    const field = (e.constraint && fields[e.constraint]) || undefined;
    throw new ConflictError(field ? `A ${what} with this ${field} already exists` : `This ${what} already exists`, field, {
      cause: e,
      details: field ? { field } : undefined,
    });
  }
  throw e;
}
