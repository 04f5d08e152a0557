import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { assertNoPassword, newUser, usersApp } from './users.fixtures.ts';

describe('users service', () => {
  const app = usersApp();
  const { create, list } = app;

  test('invalid create bodies are 400 validation_error naming the field, and create nothing', async () => {
    const base = newUser();
    const cases: [string, Record<string, unknown>, string][] = [
      ['username too short', { ...base, username: 'ab' }, 'username'],
      ['username with a space', { ...base, username: 'bad name' }, 'username'],
      ['username with illegal characters', { ...base, username: 'bad!name' }, 'username'],
      ['username too long', { ...base, username: 'a'.repeat(65) }, 'username'],
      ['bad email', { ...base, email: 'not-an-email' }, 'email'],
      ['email without domain', { ...base, email: 'user@' }, 'email'],
      ['password of 11 characters', { ...base, password: 'elevenchars' }, 'password'],
      ['role not in the list', { ...base, role: 'superuser' }, 'role'],
      ['role in the wrong case', { ...base, role: 'Admin' }, 'role'],
      ['unknown extra field', { ...base, is_admin: true }, 'is_admin'],
      ['username of the wrong type', { ...base, username: 12345 }, 'username'],
      ['password of the wrong type', { ...base, password: 123456789012345 }, 'password'],
      ['role of the wrong type', { ...base, role: ['admin'] }, 'role'],
      ['missing password', { username: base.username, email: base.email, role: base.role }, 'password'],
      ['missing username', { email: base.email, password: base.password, role: base.role }, 'username'],
    ];
    for (const [name, payload, field] of cases) {
      const res = await create(payload);
      assert.equal(res.statusCode, 400, `${name}: ${res.body}`);
      assert.equal(res.json().error.code, 'validation_error', name);
      assert.equal(res.json().error.field, field, `${name}: ${res.body}`);
      assertNoPassword(res, base.password);
    }
    assert.equal((await list(`?search=${base.username}`)).json().total, 0);
    // A password of exactly 12 characters is accepted.
    assert.equal((await create({ ...base, password: 'twelve-chars' })).statusCode, 200);
  });

  test('a non-object or empty body is a 400', async () => {
    const { ctx } = app;
    assertError(await create({}), 400, 'validation_error');
    const text = await ctx.request({ method: 'POST', url: '/users', token: ctx.adminToken, headers: { 'content-type': 'application/json' }, payload: '[1,2]' });
    assertError(text, 400, 'validation_error');
  });

  test('duplicate username (any case) or email (any case) is 409 conflict naming the field', async () => {
    const { ctx } = app;
    const first = newUser(unique('Dup'));
    assert.equal((await create(first)).statusCode, 200);

    const sameName = await create({ ...newUser(first.username.toUpperCase()), email: `${unique('o')}@example.test` });
    assertError(sameName, 409, 'conflict', 'username');
    const sameNameLower = await create({ ...newUser(first.username.toLowerCase()), email: `${unique('o')}@example.test` });
    assertError(sameNameLower, 409, 'conflict', 'username');
    const sameEmail = await create({ ...newUser(), email: first.email.toUpperCase() });
    assertError(sameEmail, 409, 'conflict', 'email');

    // Changing another user's email to a taken one is a conflict as well.
    const other = (await create(newUser())).json();
    const clash = await ctx.request({ method: 'PUT', url: `/users/${other.id}`, token: ctx.adminToken, payload: { email: first.email } });
    assertError(clash, 409, 'conflict', 'email');
    assert.equal((await ctx.request({ method: 'GET', url: `/users/${other.id}`, token: ctx.adminToken })).json().email, other.email);
  });

  test('GET, PUT and DELETE of a missing user are 404 not_found', async () => {
    const { ctx } = app;
    const missing = 987654;
    assertError(await ctx.request({ method: 'GET', url: `/users/${missing}`, token: ctx.adminToken }), 404, 'not_found');
    assertError(await ctx.request({ method: 'PUT', url: `/users/${missing}`, token: ctx.adminToken, payload: { role: 'viewer' } }), 404, 'not_found');
    assertError(await ctx.request({ method: 'DELETE', url: `/users/${missing}`, token: ctx.adminToken }), 404, 'not_found');
  });

  test('a non-integer or out-of-range id is a 400 naming id', async () => {
    const { ctx } = app;
    for (const id of ['abc', '0', '-3', '99999999999']) {
      assertError(await ctx.request({ method: 'GET', url: `/users/${id}`, token: ctx.adminToken }), 400, 'validation_error', 'id');
      assertError(await ctx.request({ method: 'PUT', url: `/users/${id}`, token: ctx.adminToken, payload: { role: 'viewer' } }), 400, 'validation_error', 'id');
      assertError(await ctx.request({ method: 'DELETE', url: `/users/${id}`, token: ctx.adminToken }), 400, 'validation_error', 'id');
    }
  });

  test('a fractional id is a 400 naming id, not truncated to another user', async () => {
    const { ctx } = app;
    const victim = await ctx.createUser('viewer');
    const fractional = `${victim.id}.5`;
    assertError(await ctx.request({ method: 'GET', url: `/users/${fractional}`, token: ctx.adminToken }), 400, 'validation_error', 'id');
    assertError(await ctx.request({ method: 'PUT', url: `/users/${fractional}`, token: ctx.adminToken, payload: { role: 'operator' } }), 400, 'validation_error', 'id');
    assertError(await ctx.request({ method: 'DELETE', url: `/users/${fractional}`, token: ctx.adminToken }), 400, 'validation_error', 'id');
    const still = await ctx.request({ method: 'GET', url: `/users/${victim.id}`, token: ctx.adminToken });
    assert.equal(still.statusCode, 200);
    assert.equal(still.json().role, 'viewer');
  });

  test('invalid PUT /users/{id} bodies are 400 naming the field and change nothing', async () => {
    const { ctx } = app;
    const user = await ctx.createUser('viewer');
    const cases: [Record<string, unknown>, string][] = [
      [{ email: 'nope' }, 'email'],
      [{ role: 'root' }, 'role'],
      [{ is_active: 'yes' }, 'is_active'],
      [{ is_active: 1 }, 'is_active'],
      [{ password: 'short' }, 'password'],
      [{ username: 'renamed' }, 'username'],
      [{ token_version: 0 }, 'token_version'],
      [{ role: 'admin', bogus: 1 }, 'bogus'],
    ];
    for (const [payload, field] of cases) {
      const res = await ctx.request({ method: 'PUT', url: `/users/${user.id}`, token: ctx.adminToken, payload });
      assertError(res, 400, 'validation_error', field);
    }
    const after = (await ctx.request({ method: 'GET', url: `/users/${user.id}`, token: ctx.adminToken })).json();
    assert.equal(after.role, 'viewer');
    assert.equal(after.is_active, true);
    assert.equal(after.username, user.username);
    // The user's session survived: nothing was applied.
    assert.equal((await ctx.request({ method: 'GET', url: '/users/me', token: user.token })).statusCode, 200);
  });
});
