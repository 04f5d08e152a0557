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

/** Deadlock and serialization failures: PostgreSQL rolled the statement back, running it again is safe. */
const TRANSIENT = new Set(['40P01', '40001']);

/**
 * Runs `fn` (one idempotent statement or transaction) again when PostgreSQL aborted it for a
 * deadlock or a serialization failure (or one of `alsoRetry`), up to `attempts` times, with a
 * short randomised pause between tries.
 */
export async function retryTransient<T>(fn: () => Promise<T>, options: { attempts?: number; alsoRetry?: string[] } = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const code = (e as PgError).code ?? '';
      if (attempt >= attempts || !(TRANSIENT.has(code) || options.alsoRetry?.includes(code))) {
        throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 50));
    }
  }
}
