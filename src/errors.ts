/**
 * Domain errors and their HTTP mapping (STYLE.md §4). Services throw these; one Fastify error
 * handler turns them into the `{ error: { code, message, field?, details? }, request_id }` envelope.
 */

/** Options every {@link AppError} accepts. */
export interface AppErrorOptions {
  /** Stable snake_case code clients may rely on. */
  code: string;
  /** HTTP status. */
  status: number;
  /** The request field the error is about, if any. */
  field?: string;
  /** Structured extra information (e.g. `{ running_run_id }`). Never secrets. */
  details?: unknown;
  /** Underlying error, logged but never sent. */
  cause?: unknown;
  /** Whether `message` may be sent to the client (false for 5xx internals). */
  expose?: boolean;
  /** Extra response headers (e.g. `Retry-After`). */
  headers?: Record<string, string>;
}

/** Base class of every error the API deliberately answers with. */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field: string | undefined;
  readonly details: unknown;
  readonly expose: boolean;
  readonly headers: Record<string, string>;

  constructor(message: string, options: AppErrorOptions) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.status = options.status;
    this.field = options.field;
    this.details = options.details;
    this.expose = options.expose ?? options.status < 500;
    this.headers = options.headers ?? {};
  }
}

/** Extra options for the concrete error classes. */
type ErrorExtras = Partial<Pick<AppErrorOptions, 'details' | 'cause' | 'headers'>>;

/** Input is invalid (400). `field` names the offending request field. */
export class ValidationError extends AppError {
  constructor(message: string, field?: string, extras: ErrorExtras = {}) {
    super(message, { code: 'validation_error', status: 400, field, ...extras });
  }
}

/** Missing, invalid or revoked credentials (401). */
export class AuthError extends AppError {
  constructor(message = 'Authentication required', extras: ErrorExtras = {}) {
    super(message, { code: 'auth_error', status: 401, ...extras });
  }
}

/** Authenticated but not allowed (403). */
export class PermissionError extends AppError {
  constructor(message = 'You do not have permission to do this', extras: ErrorExtras = {}) {
    super(message, { code: 'permission_error', status: 403, ...extras });
  }
}

/** The resource does not exist (404). */
export class NotFoundError extends AppError {
  constructor(message: string, extras: ErrorExtras = {}) {
    super(message, { code: 'not_found', status: 404, ...extras });
  }
}

/** Uniqueness or reference conflict (409); `details` names what it conflicts with. */
export class ConflictError extends AppError {
  constructor(message: string, field?: string, extras: ErrorExtras = {}) {
    super(message, { code: 'conflict', status: 409, field, ...extras });
  }
}

/** The resource is in a state that forbids the operation (409). */
export class InvalidStateError extends AppError {
  constructor(message: string, extras: ErrorExtras = {}) {
    super(message, { code: 'invalid_state', status: 409, ...extras });
  }
}

/** Too many attempts (429); sets `Retry-After`. */
export class RateLimitError extends AppError {
  constructor(message: string, retryAfterSeconds: number) {
    super(message, {
      code: 'rate_limited',
      status: 429,
      details: { retry_after_s: retryAfterSeconds },
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
  }
}

/** A database operation failed (500); the message sent is generic, the cause is logged. */
export class DatabaseError extends AppError {
  constructor(message = 'A database error occurred', extras: ErrorExtras = {}) {
    super(message, { code: 'database_error', status: 500, expose: true, ...extras });
  }
}

/** One of our own dependencies is unavailable (503). */
export class ServiceCommunicationError extends AppError {
  constructor(service: string, message: string, extras: ErrorExtras = {}) {
    super(message, { code: 'service_unavailable', status: 503, details: { service }, expose: true, ...extras });
  }
}

/** Turns anything thrown into an `Error` so it can be rethrown with `{ cause }`. */
export function coerceError(e: unknown): Error {
  if (e instanceof Error) {
    return e;
  }
  return new Error(typeof e === 'string' ? e : JSON.stringify(e));
}
