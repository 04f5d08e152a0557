import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { credentialsApp, RESPONSE_KEYS } from './credentials.fixtures.ts';

describe('credentials', () => {
  const app = credentialsApp();
  const { call, post, put, get, del, create, secret, countRows } = app;

  test('GET /credentials: shape, newest first, paging, type and search filters', async () => {
    const { ctx } = app;
    const tag = unique('listing');
    const first = await create({ name: `${tag}-a`, type: 'api_token', token: secret('tok-l1') });
    const second = await create({ name: `${tag}-b`, type: 'password', username: 'x', password: secret('pw-l2') });
    const all = await call({ method: 'GET', url: '/credentials?limit=200', token: ctx.adminToken });
    assert.equal(all.statusCode, 200);
    const body = all.json();
    assert.deepEqual(Object.keys(body).sort(), ['credentials', 'limit', 'page', 'total']);
    assert.equal(body.page, 1);
    assert.equal(body.limit, 200);
    assert.equal(body.total, await countRows());
    assert.equal(body.credentials.length, body.total);
    const ids = body.credentials.map((c: { id: number }) => c.id);
    assert.deepEqual(ids, [...ids].sort((a: number, b: number) => b - a), 'newest first');
    for (const c of body.credentials) {
      assert.deepEqual(Object.keys(c).sort(), RESPONSE_KEYS);
    }

    const searched = (await call({ method: 'GET', url: `/credentials?search=${tag}`, token: ctx.adminToken })).json();
    assert.deepEqual(
      searched.credentials.map((c: { id: number }) => c.id),
      [second.id, first.id],
    );
    assert.equal(searched.total, 2);
    const typed = (await call({ method: 'GET', url: `/credentials?search=${tag}&type=api_token`, token: ctx.adminToken })).json();
    assert.deepEqual(
      typed.credentials.map((c: { id: number }) => c.id),
      [first.id],
    );
    const paged = (await call({ method: 'GET', url: `/credentials?search=${tag}&limit=1&page=2`, token: ctx.adminToken })).json();
    assert.deepEqual(
      paged.credentials.map((c: { id: number }) => c.id),
      [first.id],
    );
    assert.equal(paged.total, 2);
    assertError(await call({ method: 'GET', url: '/credentials?limit=201', token: ctx.adminToken }), 400, 'validation_error', 'limit');
    assertError(await call({ method: 'GET', url: '/credentials?type=kerberos', token: ctx.adminToken }), 400, 'validation_error', 'type');
  });

  test('operators and viewers read metadata but cannot create, change or delete', async () => {
    const { ctx } = app;
    const password = secret('role-pw');
    const created = await create({ type: 'password', username: 'svc', password });
    const before = await countRows();
    for (const role of ['operator', 'viewer'] as const) {
      const user = await ctx.createUser(role);
      const list = await call({ method: 'GET', url: '/credentials', token: user.token });
      assert.equal(list.statusCode, 200, `${role} list`);
      assert.ok(list.json().credentials.some((c: { id: number }) => c.id === created.id));
      const one = await get(created.id, user.token);
      assert.equal(one.statusCode, 200, `${role} get`);
      assert.equal(one.json().has_password, true);
      assert.equal(one.body.includes(password), false);

      assertError(await post({ name: unique('nope'), type: 'password', username: 'u', password: secret('role-pw2') }, user.token), 403, 'permission_error');
      assertError(await put(created.id, { password: secret('role-pw3') }, user.token), 403, 'permission_error');
      assertError(await put(created.id, { description: 'hijacked' }, user.token), 403, 'permission_error');
      assertError(await del(created.id, '', user.token), 403, 'permission_error');
      assertError(await del(created.id, '?force=true', user.token), 403, 'permission_error');
    }
    assertError(await call({ method: 'GET', url: '/credentials' }), 401, 'auth_error');
    assertError(await call({ method: 'POST', url: '/credentials', payload: { name: 'x', type: 'api_token', token: 'abcdefgh' } }), 401, 'auth_error');
    assert.equal(await countRows(), before);
    const resolved = await ctx.deps.credentials.resolve(created.id);
    assert.equal(resolved.password, password);
    assert.equal((await get(created.id)).json().description, '');
  });
});
