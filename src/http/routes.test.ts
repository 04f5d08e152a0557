import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext } from '../../test/app.ts';
import type { AccessEntry } from './auth.plugin.ts';

/** The routes DESIGN.md §1 allows without a token. */
// The catalog bundle is served to signed links (HMAC, 15 minutes) without a login.
const PUBLIC = new Set(['GET /health', 'POST /auth/login', 'POST /auth/refresh', 'GET /openapi.json', 'GET /catalog/:id/bundle']);
const isDocs = (url: string) => url === '/docs' || url.startsWith('/docs/');


describe('every route is authenticated and role-checked', () => {
  let ctx: TestContext;
  const routes: AccessEntry[] = [];
  before(async () => {
    ctx = await createTestContext({ worker: true });
  });
  after(() => ctx.close());

  test('routes are collected from the app', async () => {
    routes.push(...ctx.routes.filter((r) => r.method !== 'HEAD'));
    assert.ok(routes.length >= 12, `found ${routes.length} routes`);
  });

  test('only the documented routes are public', () => {
    const open = routes.filter((r) => r.access === 'public' && !isDocs(r.url)).map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(new Set(open), PUBLIC);
  });

  test('every other route answers 401 in the envelope without a token, and with a forged one', async () => {
    for (const route of routes.filter((r) => r.access !== 'public')) {
      const url = route.url.replace(/:(\w+)/g, '1');
      for (const authorization of [undefined, 'Bearer not.a.token', 'Basic YWRtaW46YWRtaW4=']) {
        const res = await ctx.request({ method: route.method as 'GET', url, headers: authorization ? { authorization } : {}, payload: route.method === 'GET' || route.method === 'DELETE' ? undefined : {} });
        assert.equal(res.statusCode, 401, `${route.method} ${route.url} with ${authorization ?? 'no token'} → ${res.statusCode}`);
        assert.equal(res.json().error.code, 'auth_error');
        assert.equal(typeof res.json().request_id, 'string');
      }
    }
  });

  test('malformed input on every route is a 4xx naming what is wrong, never a 500', async () => {
    const bodies: unknown[] = [{}, { zzz_unknown: 1 }, [], 'text', { name: 42, steps: 'x', target_ids: ['a'] }];
    // (logout is left out: it would end the admin session the rest of this file uses)
    for (const route of routes.filter((r) => !r.url.startsWith('/docs') && !r.url.endsWith('/events') && r.url !== '/auth/logout')) {
      for (const id of ['abc', '999999']) {
        const url = route.url.replace(/:(\w+)/g, id).replace('*', `nope-${id}.txt`);
        for (const payload of route.method === 'GET' || route.method === 'DELETE' ? [undefined] : bodies) {
          const res = await ctx.request({ method: route.method as 'POST', url: `${url}?page=x`, token: ctx.adminToken, payload: payload as object });
          assert.ok(res.statusCode < 500, `${route.method} ${url} ${JSON.stringify(payload)} → ${res.statusCode} ${res.body}`);
          if (res.statusCode >= 400) {
            assert.equal(typeof res.json().error.code, 'string');
          }
        }
      }
    }
  });

  test('routes that need a higher role refuse a viewer with 403 before touching input', async () => {
    const viewer = await ctx.createUser('viewer');
    const restricted = routes.filter((r) => r.access === 'operator' || r.access === 'admin');
    assert.ok(restricted.length > 0);
    for (const route of restricted) {
      const url = route.url.replace(/:(\w+)/g, '1');
      const res = await ctx.request({ method: route.method as 'GET', url, token: viewer.token, payload: route.method === 'GET' || route.method === 'DELETE' ? undefined : {} });
      assert.equal(res.statusCode, 403, `${route.method} ${route.url} as viewer → ${res.statusCode}`);
      assert.equal(res.json().error.code, 'permission_error');
    }
  });
});

