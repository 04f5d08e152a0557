import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext } from '../../test/app.ts';

describe('HTTP conventions', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await createTestContext();
  });
  after(() => ctx.close());

  test('unknown routes are 404 not_found in the envelope', async () => {
    const res = await ctx.request({ method: 'GET', url: '/no/such/route?x=1' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'not_found');
    assert.equal(res.json().request_id, res.headers['x-request-id']);
  });

  test('malformed JSON is a 400 naming the body', async () => {
    const res = await ctx.request({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username": ' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'validation_error');
    assert.equal(res.json().error.field, 'body');
  });

  test('bodies over 1 MiB are 413 payload_too_large', async () => {
    const res = await ctx.request({ method: 'POST', url: '/users', token: ctx.adminToken, payload: { username: 'x'.repeat(1024 * 1024 + 10) } });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error.code, 'payload_too_large');
  });

  test('an unsupported content type is a 415', async () => {
    const res = await ctx.request({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/xml' }, payload: '<x/>' });
    assert.equal(res.statusCode, 415);
    assert.equal(res.json().error.code, 'unsupported_media_type');
  });

  test('unknown fields and bad query values are 400s naming the field', async () => {
    const extra = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: 'a', password: 'b', pasword: 'typo' } });
    assert.equal(extra.statusCode, 400);
    assert.equal(extra.json().error.field, 'pasword');
    const limit = await ctx.request({ method: 'GET', url: '/users?limit=201', token: ctx.adminToken });
    assert.equal(limit.statusCode, 400);
    assert.equal(limit.json().error.field, 'limit');
    const notNumber = await ctx.request({ method: 'GET', url: '/users?page=abc', token: ctx.adminToken });
    assert.equal(notNumber.statusCode, 400);
    assert.equal(notNumber.json().error.field, 'page');
    const unknownQuery = await ctx.request({ method: 'GET', url: '/users?serch=x', token: ctx.adminToken });
    assert.equal(unknownQuery.statusCode, 400);
    assert.equal(unknownQuery.json().error.field, 'serch');
  });

  test('a well-formed x-request-id is echoed, anything else replaced', async () => {
    const given = await ctx.request({ method: 'GET', url: '/health', headers: { 'x-request-id': 'trace-abc.123' } });
    assert.equal(given.headers['x-request-id'], 'trace-abc.123');
    const hostile = await ctx.request({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id\twith spaces' } });
    assert.match(hostile.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
  });

  test('security headers are set and CORS is off by default', async () => {
    const res = await ctx.request({ method: 'GET', url: '/health', headers: { origin: 'http://evil.example' } });
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.ok(res.headers['strict-transport-security']);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });

  test('health reports the guide shape', async () => {
    const res = await ctx.request({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.service, 'gateway');
    assert.equal(body.status, 'healthy');
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(Object.keys(body.checks[0]).sort(), ['duration_ms', 'message', 'name', 'status']);
  });

  test('the OpenAPI document and docs are public and generated from the routes', async () => {
    const doc = await ctx.request({ method: 'GET', url: '/openapi.json' });
    assert.equal(doc.statusCode, 200);
    const spec = doc.json();
    assert.match(spec.openapi, /^3\./);
    for (const path of ['/auth/login', '/auth/refresh', '/users', '/users/{id}', '/users/me', '/audit', '/health']) {
      assert.ok(spec.paths[path], `missing ${path}`);
    }
    assert.deepEqual(spec.paths['/users'].get.security, [{ bearerAuth: [] }]);
    assert.equal(spec.paths['/auth/login'].post.security, undefined);
    assert.ok(spec.paths['/users'].post.requestBody.content['application/json'].schema.properties.password);
    assert.equal(spec.components.securitySchemes.bearerAuth.scheme, 'bearer');
    const docs = await ctx.request({ method: 'GET', url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger/i);
  });
});

describe('CORS when configured', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await createTestContext({ env: { OPSCONDUCTOR_CORS_ORIGINS: 'https://console.example' } });
  });
  after(() => ctx.close());

  test('allows the configured origin only', async () => {
    const ok = await ctx.request({ method: 'GET', url: '/health', headers: { origin: 'https://console.example' } });
    assert.equal(ok.headers['access-control-allow-origin'], 'https://console.example');
    const other = await ctx.request({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });
});
