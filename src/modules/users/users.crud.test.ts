import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { assertNoPassword, assertUserShape, ISO_UTC, newUser, type UserBody, usersApp } from './users.fixtures.ts';

describe('users service', () => {
  const app = usersApp();
  const { create, list } = app;

  test('POST /users returns the user in the contract shape, without any password', async () => {
    const { ctx } = app;
    const input = newUser(unique('Create.me-'), 'operator');
    const res = await create(input);
    assert.equal(res.statusCode, 200, res.body);
    const user = res.json() as UserBody;
    assertUserShape(user);
    assert.equal(user.username, input.username);
    assert.equal(user.email, input.email);
    assert.equal(user.role, 'operator');
    assert.equal(user.is_active, true);
    assert.equal(user.last_login_at, null);
    assertNoPassword(res, input.password);

    // Every other response carrying this user is password-free too.
    const got = await ctx.request({ method: 'GET', url: `/users/${user.id}`, token: ctx.adminToken });
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), user);
    assertNoPassword(got, input.password);
    const listed = await list(`?search=${encodeURIComponent(input.username)}`);
    assert.equal(listed.json().total, 1);
    assertNoPassword(listed, input.password);
    const newPassword = `new-${unique()}-${unique()}`;
    const updated = await ctx.request({ method: 'PUT', url: `/users/${user.id}`, token: ctx.adminToken, payload: { password: newPassword } });
    assert.equal(updated.statusCode, 200);
    assertNoPassword(updated, input.password, newPassword);

    // Logging in sets last_login_at; the user sees themselves without a password.
    const token = (await ctx.login(input.username, newPassword)).access_token;
    const me = await ctx.request({ method: 'GET', url: '/users/me', token });
    assert.equal(me.statusCode, 200);
    assert.match(me.json().last_login_at, ISO_UTC);
    assertNoPassword(me, input.password, newPassword);
  });

  test('PUT /users/{id} changes email, role, is_active and password', async () => {
    const { ctx } = app;
    const user = await ctx.createUser('operator');
    const before = (await ctx.request({ method: 'GET', url: `/users/${user.id}`, token: ctx.adminToken })).json() as UserBody;

    const email = `${unique('changed')}@example.test`;
    const res = await ctx.request({ method: 'PUT', url: `/users/${user.id}`, token: ctx.adminToken, payload: { email, role: 'viewer' } });
    assert.equal(res.statusCode, 200, res.body);
    const updated = res.json() as UserBody;
    assertUserShape(updated);
    assert.equal(updated.email, email);
    assert.equal(updated.role, 'viewer');
    assert.equal(updated.username, user.username);
    assert.equal(updated.created_at, before.created_at);
    assert.ok(Date.parse(updated.updated_at) >= Date.parse(before.updated_at));
    const reread = (await ctx.request({ method: 'GET', url: `/users/${user.id}`, token: ctx.adminToken })).json();
    assert.equal(reread.email, email);
    assert.equal(reread.role, 'viewer');

    const newPassword = `changed-${unique()}-${unique()}`;
    assert.equal((await ctx.request({ method: 'PUT', url: `/users/${user.id}`, token: ctx.adminToken, payload: { password: newPassword } })).statusCode, 200);
    const oldLogin = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: user.password } });
    assert.equal(oldLogin.statusCode, 401);
    const token = (await ctx.login(user.username, newPassword)).access_token;
    assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token })).json().role, 'viewer');

    const disabled = await ctx.request({ method: 'PUT', url: `/users/${user.id}`, token: ctx.adminToken, payload: { is_active: false } });
    assert.equal(disabled.statusCode, 200);
    assert.equal(disabled.json().is_active, false);
    assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token })).statusCode, 401);
    const blocked = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: newPassword } });
    assert.equal(blocked.statusCode, 401);

    const enabled = await ctx.request({ method: 'PUT', url: `/users/${user.id}`, token: ctx.adminToken, payload: { is_active: true } });
    assert.equal(enabled.json().is_active, true);
    assert.equal((await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: newPassword } })).statusCode, 200);
  });

  test('DELETE /users/{id} deletes the user and ends their access', async () => {
    const { ctx } = app;
    const user = await ctx.createUser('operator');
    const res = await ctx.request({ method: 'DELETE', url: `/users/${user.id}`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { message: 'User deleted successfully' });
    assertError(await ctx.request({ method: 'GET', url: `/users/${user.id}`, token: ctx.adminToken }), 404, 'not_found');
    assertError(await ctx.request({ method: 'DELETE', url: `/users/${user.id}`, token: ctx.adminToken }), 404, 'not_found');
    assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token: user.token })).statusCode, 401);
    const login = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: user.password } });
    assert.equal(login.statusCode, 401);
    assert.equal((await list(`?search=${user.username}`)).json().total, 0);
    // The name is free again.
    assert.equal((await create(newUser(user.username))).statusCode, 200);
  });
});
