/**
 * The one error handler: every failure becomes `{ error: { code, message, field?, details? },
 * request_id }`. Unknown errors are logged with the request id and answered as a bare 500.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

import { AppError } from '../errors.ts';

interface SchemaIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** The wire form of an error. */
export interface ErrorBody {
  error: { code: string; message: string; field?: string; details?: unknown };
  request_id: string;
}

function issueField(issue: SchemaIssue, context: string | undefined): string {
  const path = (issue.instancePath ?? '').split('/').filter(Boolean);
  const extra = issue.params?.requiredProperties ?? issue.params?.additionalProperties ?? issue.params?.additionalProperty ?? issue.params?.missingProperty;
  if (Array.isArray(extra) && extra.length > 0) {
    path.push(String(extra[0]));
  } else if (typeof extra === 'string') {
    path.push(extra);
  }
  return path.length > 0 ? path.join('.') : (context ?? 'body');
}

function issueMessage(issue: SchemaIssue): string {
  if (issue.params?.additionalProperties || issue.params?.additionalProperty) {
    return 'is not a known field';
  }
  if (issue.params?.requiredProperties || issue.params?.missingProperty) {
    return 'is required';
  }
  if (Array.isArray(issue.params?.allowedValues)) {
    return `must be one of: ${(issue.params.allowedValues as unknown[]).join(', ')}`;
  }
  return issue.message ?? 'is invalid';
}

/** Turns schema validation issues into one ValidationError naming the first field. */
export function validationFailure(issues: SchemaIssue[], context: string | undefined): AppError {
  // TypeBox reports an additional property twice (once as "schema is false"); drop the echo.
  const useful = issues.filter((i) => i.keyword !== 'boolean' && i.keyword !== 'anyOf' && i.keyword !== 'const');
  const list = (useful.length > 0 ? useful : issues).map((i) => ({ field: issueField(i, context), message: issueMessage(i) }));
  const unique = list.filter((item, idx) => list.findIndex((o) => o.field === item.field) === idx);
  const first = unique[0] ?? { field: context ?? 'body', message: 'is invalid' };
  return new AppError(`${first.field} ${first.message}`, {
    code: 'validation_error',
    status: 400,
    field: first.field,
    details: unique,
  });
}

const FASTIFY_CODES: Record<string, { status: number; code: string; field?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'payload_too_large', field: 'body' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type', field: 'content-type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'validation_error', field: 'content-length' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'validation_error', field: 'body' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'validation_error', field: 'body' },
};

/** Maps anything thrown to an {@link AppError} (unknown errors become a non-exposed 500). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) {
    return err;
  }
  const fe = err as FastifyError;
  if (Array.isArray(fe.validation)) {
    return validationFailure(fe.validation as SchemaIssue[], fe.validationContext);
  }
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (known) {
    return new AppError(fe.message, { ...known });
  }
  if (err instanceof SyntaxError || (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)) {
    // Fastify's own 4xx (malformed JSON, bad headers …): its message is safe to show.
    return new AppError(fe.message, { code: 'validation_error', status: fe.statusCode ?? 400, field: 'body' });
  }
  return new AppError('Internal server error', { code: 'internal_error', status: 500, expose: false, cause: err });
}

/** Builds the envelope for `error` on `request`. */
export function errorBody(error: AppError, requestId: string): ErrorBody {
  const body: ErrorBody = {
    error: { code: error.code, message: error.expose ? error.message : 'Internal server error' },
    request_id: requestId,
  };
  if (error.field !== undefined) {
    body.error.field = error.field;
  }
  if (error.details !== undefined && error.expose) {
    body.error.details = error.details;
  }
  return body;
}

/** Fastify error handler. */
export function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const error = toAppError(err);
  if (error.status >= 500) {
    request.log.error({ err: error.cause ?? err, code: error.code }, 'request failed');
  } else {
    request.log.info({ code: error.code, status: error.status, field: error.field }, error.message);
  }
  return reply.status(error.status).headers(error.headers).send(errorBody(error, request.id));
}

/** Fastify not-found handler: unknown routes are 404 `not_found` in the envelope. */
export function handleNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const body = errorBody(new AppError(`Route ${request.method} ${request.url.split('?')[0]} not found`, { code: 'not_found', status: 404 }), request.id);
  return reply.status(404).send(body);
}
