import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ADMIN_PASSWORD, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { assertNoPassword, assertUserShape, usersApp } from './users.fixtures.ts';

describe('users service', () => {
  const app = usersApp();

  test('GET /users/me returns the caller', async () => {
    const { ctx } = app;
    const admin = await ctx.request({ method: 'GET', url: '/users/me', token: ctx.adminToken });
    assert.equal(admin.statusCode, 200);
    assertUserShape(admin.json());
    assert.equal(admin.json().username, 'admin');
    assert.equal(admin.json().role, 'admin');
    assertNoPassword(admin, ADMIN_PASSWORD);
    const viewer = await ctx.createUser('viewer');
    const me = await ctx.request({ method: 'GET', url: '/users/me', token: viewer.token });
    assert.equal(me.json().id, viewer.id);
    assert.equal(me.json().username, viewer.username);
  });

  test('PUT /users/me changes the own email and nothing else', async () => {
    const { ctx } = app;
    const user = await ctx.createUser('viewer');
    const email = `${unique('mine')}@example.test`;
    const res = await ctx.request({ method: 'PUT', url: '/users/me', token: user.token, payload: { email } });
    assert.equal(res.statusCode, 200, res.body);
    assertUserShape(res.json());
    assert.equal(res.json().id, user.id);
    assert.equal(res.json().email, email);
    assert.equal(res.json().role, 'viewer');
    assertNoPassword(res, user.password);
    assert.equal((await ctx.request({ method: 'GET', url: `/users/${user.id}`, token: ctx.adminToken })).json().email, email);
    // An email change alone keeps the session.
    assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token: user.token })).statusCode, 200);

    // A user cannot raise their own role, activate themselves or pick another name.
    for (const [payload, field] of [
      [{ role: 'admin' }, 'role'],
      [{ is_active: true }, 'is_active'],
      [{ username: 'someone-else' }, 'username'],
      [{ password: `x-${unique()}-${unique()}` }, 'password'],
      [{ email: 'broken' }, 'email'],
    ] as const) {
      assertError(await ctx.request({ method: 'PUT', url: '/users/me', token: user.token, payload }), 400, 'validation_error', field);
    }
    assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token: user.token })).json().role, 'viewer');

    // Taking someone else's email is a conflict.
    const other = await ctx.createUser('viewer');
    const clash = await ctx.request({ method: 'PUT', url: '/users/me', token: user.token, payload: { email: `${other.username}@EXAMPLE.test`.toUpperCase() } });
    assertError(clash, 409, 'conflict', 'email');
  });

  test('PUT /users/me with new_password requires the right current_password', async () => {
    const { ctx } = app;
    const user = await ctx.createUser('operator');
    const newPassword = `mine-${unique()}-${unique()}`;

    const missing = await ctx.request({ method: 'PUT', url: '/users/me', token: user.token, payload: { new_password: newPassword } });
    assertError(missing, 400, 'validation_error', 'current_password');
    const wrong = await ctx.request({
      method: 'PUT',
      url: '/users/me',
      token: user.token,
      payload: { current_password: 'not-my-password-at-all', new_password: newPassword },
    });
    assertError(wrong, 400, 'validation_error', 'current_password');
    assertNoPassword(wrong, newPassword, 'not-my-password-at-all');
    const short = await ctx.request({ method: 'PUT', url: '/users/me', token: user.token, payload: { current_password: user.password, new_password: 'short-pw' } });
    assertError(short, 400, 'validation_error', 'new_password');

    // None of the refused attempts changed anything.
    assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token: user.token })).statusCode, 200);
    const stillOld = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: user.password } });
    assert.equal(stillOld.statusCode, 200);
    const notYetNew = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: newPassword } });
    assert.equal(notYetNew.statusCode, 401);
  });

  test('changing the own password ends old sessions; only the new password logs in', async () => {
    const { ctx } = app;
    const user = await ctx.createUser('viewer');
    const other = await ctx.login(user.username, user.password);
    const newPassword = `mine-${unique()}-${unique()}`;
    const res = await ctx.request({
      method: 'PUT',
      url: '/users/me',
      token: user.token,
      payload: { current_password: user.password, new_password: newPassword },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().id, user.id);
    assertNoPassword(res, user.password, newPassword);

    assertError(await ctx.request({ method: 'GET', url: '/users/me', token: user.token }), 401, 'auth_error');
    assertError(await ctx.request({ method: 'GET', url: '/users/me', token: other.access_token }), 401, 'auth_error');
    assert.equal((await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: other.refresh_token } })).statusCode, 401);
    const oldLogin = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: user.password } });
    assert.equal(oldLogin.statusCode, 401);
    const fresh = await ctx.login(user.username, newPassword);
    const me = await ctx.request({ method: 'GET', url: '/users/me', token: fresh.access_token });
    assert.equal(me.statusCode, 200);
    assert.equal(me.json().id, user.id);
  });
});
