import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ADMIN_PASSWORD, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { type UserBody, usersApp } from './users.fixtures.ts';

describe('the last active admin', () => {
  const app = usersApp();
  const put = (id: number, payload: Record<string, unknown>, token = app.ctx.adminToken) => app.ctx.request({ method: 'PUT', url: `/users/${id}`, token, payload });

  test('the only admin cannot be deleted, disabled or demoted', async () => {
    const { ctx, adminId } = app;
    const list = (await ctx.request({ method: 'GET', url: '/users?limit=200', token: ctx.adminToken })).json();
    assert.deepEqual(list.users.filter((u: UserBody) => u.role === 'admin').map((u: UserBody) => u.id), [adminId]);

    assertError(await ctx.request({ method: 'DELETE', url: `/users/${adminId}`, token: ctx.adminToken }), 409, 'conflict');
    assertError(await put(adminId, { is_active: false }), 409, 'conflict');
    assertError(await put(adminId, { role: 'operator' }), 409, 'conflict');
    assertError(await put(adminId, { role: 'viewer', is_active: false }), 409, 'conflict');

    // Refused changes were rolled back whole: still an active admin, token still valid.
    const me = await ctx.request({ method: 'GET', url: '/users/me', token: ctx.adminToken });
    assert.equal(me.statusCode, 200);
    assert.equal(me.json().role, 'admin');
    assert.equal(me.json().is_active, true);
  });

  test('a disabled admin does not count as another active admin', async () => {
    const { ctx, adminId } = app;
    const fresh = (await ctx.login('admin', ADMIN_PASSWORD)).access_token;
    const second = await ctx.createUser('operator', { username: 'second-admin' });
    assert.equal((await put(second.id, { role: 'admin', is_active: false }, fresh)).statusCode, 200);
    assertError(await put(adminId, { role: 'operator' }, fresh), 409, 'conflict');
    assertError(await ctx.request({ method: 'DELETE', url: `/users/${adminId}`, token: fresh }), 409, 'conflict');
    // Nor does a non-admin.
    await ctx.createUser('operator');
    assertError(await put(adminId, { is_active: false }, fresh), 409, 'conflict');
    assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token: fresh })).json().role, 'admin');
  });

  test('with a second active admin the first can be demoted, and the second becomes the last', async () => {
    const { ctx, adminId } = app;
    const adminToken = (await ctx.login('admin', ADMIN_PASSWORD)).access_token;
    const second = await ctx.request({ method: 'GET', url: '/users?search=second-admin', token: adminToken });
    const secondId = second.json().users[0].id as number;
    assert.equal((await put(secondId, { is_active: true }, adminToken)).statusCode, 200);
    const secondUser = (await ctx.request({ method: 'GET', url: `/users/${secondId}`, token: adminToken })).json();
    assert.equal(secondUser.role, 'admin');
    assert.equal(secondUser.is_active, true);
    // The createUser password was discarded; give the second admin a known one.
    const secondPassword = `second-${unique()}-${unique()}`;
    assert.equal((await put(secondId, { password: secondPassword }, adminToken)).statusCode, 200);
    const secondToken = (await ctx.login('second-admin', secondPassword)).access_token;

    const demoted = await put(adminId, { role: 'operator' }, secondToken);
    assert.equal(demoted.statusCode, 200, demoted.body);
    assert.equal(demoted.json().role, 'operator');
    // The demotion ended the first admin's session.
    assertError(await ctx.request({ method: 'GET', url: '/users', token: adminToken }), 401, 'auth_error');
    const asOperator = (await ctx.login('admin', ADMIN_PASSWORD)).access_token;
    assertError(await ctx.request({ method: 'GET', url: '/users', token: asOperator }), 403, 'permission_error');

    // Now the second admin is the last one and is protected in turn.
    assertError(await ctx.request({ method: 'DELETE', url: `/users/${secondId}`, token: secondToken }), 409, 'conflict');
    assertError(await put(secondId, { is_active: false }, secondToken), 409, 'conflict');
    assertError(await put(secondId, { role: 'viewer' }, secondToken), 409, 'conflict');

    // Re-promote the first; then the second may be deleted.
    assert.equal((await put(adminId, { role: 'admin' }, secondToken)).statusCode, 200);
    const adminAgain = (await ctx.login('admin', ADMIN_PASSWORD)).access_token;
    const removed = await ctx.request({ method: 'DELETE', url: `/users/${secondId}`, token: adminAgain });
    assert.equal(removed.statusCode, 200, removed.body);
    assertError(await ctx.request({ method: 'DELETE', url: `/users/${adminId}`, token: adminAgain }), 409, 'conflict');
    // Changes that keep the last admin an active admin are fine.
    const same = await put(adminId, { role: 'admin', is_active: true, email: 'root@example.test' }, adminAgain);
    assert.equal(same.statusCode, 200, same.body);
    assert.equal(same.json().role, 'admin');
  });

  test('two admins demoting each other at once leave exactly one admin', async () => {
    const { ctx, adminId } = app;
    const adminToken = (await ctx.login('admin', ADMIN_PASSWORD)).access_token;
    const username = unique('rival');
    const password = `rival-${unique()}-${unique()}`;
    const created = await ctx.request({
      method: 'POST',
      url: '/users',
      token: adminToken,
      payload: { username, email: `${username}@example.test`, password, role: 'admin' },
    });
    assert.equal(created.statusCode, 200, created.body);
    const rivalId = created.json().id as number;
    const rivalToken = (await ctx.login(username, password)).access_token;

    const [a, b] = await Promise.all([put(rivalId, { role: 'viewer' }, adminToken), put(adminId, { role: 'viewer' }, rivalToken)]);
    const statuses = [a.statusCode, b.statusCode].sort();
    // Either one wins and the other hits the last-admin rule, or the loser's token died with its demotion.
    assert.equal(statuses.filter((s) => s === 200).length, 1, `${a.statusCode} ${a.body} / ${b.statusCode} ${b.body}`);
    assert.ok(statuses.every((s) => s === 200 || s === 409 || s === 401), `${a.body} / ${b.body}`);
    const survivorToken = a.statusCode === 200 ? (await ctx.login('admin', ADMIN_PASSWORD)).access_token : (await ctx.login(username, password)).access_token;
    const users = (await ctx.request({ method: 'GET', url: '/users?limit=200', token: survivorToken })).json().users as UserBody[];
    assert.equal(users.filter((u) => u.role === 'admin' && u.is_active).length, 1);
  });
});
