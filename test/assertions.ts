/** Assertions shared by HTTP tests. */
import assert from 'node:assert/strict';

import type { LightMyRequestResponse } from 'fastify';

/** Asserts an error envelope: `status`, `error.code`, `error.field` when given, and a request id. */
export function assertError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
  assert.equal(res.statusCode, status, `expected ${status}, got ${res.statusCode}: ${res.body}`);
  const body = res.json();
  assert.equal(body.error.code, code, res.body);
  if (field !== undefined) {
    assert.equal(body.error.field, field, res.body);
  }
  assert.equal(typeof body.request_id, 'string');
}
