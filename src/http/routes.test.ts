import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext } from '../../test/app.ts';
import type { AccessEntry } from './auth.plugin.ts';

/** The routes DESIGN.md §1 allows without a token. */
const PUBLIC = new Set(['GET /health', 'POST /auth/login', 'POST /auth/refresh', 'GET /openapi.json']);
const isDocs = (url: string) => url === '/docs' || url.startsWith('/docs/');


describe('every route is authenticated and role-checked', () => {
  let ctx: TestContext;
  const routes: AccessEntry[] = [];
  before(async () => {
    ctx = await createTestContext();
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

