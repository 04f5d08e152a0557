import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { assertError } from '../../../test/assertions.ts';
import { assertNoPassword, newUser, usersApp } from './users.fixtures.ts';

describe('users service', () => {
  const app = usersApp();

  for (const role of ['viewer', 'operator'] as const) {
    test(`${role}s get 403 on user management and on other users, but can read themselves`, async () => {
      const { ctx, adminId } = app;
      const me = await ctx.createUser(role);
      const other = await ctx.createUser('viewer');
      const calls = [
        { method: 'GET', url: '/users' },
        { method: 'GET', url: '/users?search=admin' },
        { method: 'POST', url: '/users', payload: newUser() },
        { method: 'GET', url: `/users/${other.id}` },
        { method: 'GET', url: `/users/${adminId}` },
        { method: 'PUT', url: `/users/${other.id}`, payload: { role: 'admin' } },
        { method: 'PUT', url: `/users/${me.id}`, payload: { role: 'admin' } },
        { method: 'DELETE', url: `/users/${other.id}` },
        { method: 'DELETE', url: `/users/${me.id}` },
      ] as const;
      for (const call of calls) {
        const res = await ctx.request({ ...call, token: me.token });
        assertError(res, 403, 'permission_error');
      }
      const self = await ctx.request({ method: 'GET', url: `/users/${me.id}`, token: me.token });
      assert.equal(self.statusCode, 200);
      assert.equal(self.json().id, me.id);
      assert.equal(self.json().username, me.username);
      assert.equal(self.json().role, role);
      assertNoPassword(self, me.password);
      // Nothing was changed by the refused calls.
      const otherNow = await ctx.request({ method: 'GET', url: `/users/${other.id}`, token: ctx.adminToken });
      assert.equal(otherNow.statusCode, 200);
      assert.equal(otherNow.json().role, 'viewer');
      assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token: me.token })).json().role, role);
    });
  }

  test('every users route needs a token', async () => {
    const { ctx, adminId } = app;
    for (const call of [
      { method: 'GET', url: '/users' },
      { method: 'POST', url: '/users', payload: newUser() },
      { method: 'GET', url: '/users/me' },
      { method: 'PUT', url: '/users/me', payload: { email: 'x@example.test' } },
      { method: 'GET', url: `/users/${adminId}` },
      { method: 'PUT', url: `/users/${adminId}`, payload: { role: 'viewer' } },
      { method: 'DELETE', url: `/users/${adminId}` },
    ] as const) {
      assertError(await ctx.request(call), 401, 'auth_error');
    }
  });
});
