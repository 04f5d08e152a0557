import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { ADMIN_PASSWORD, createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';

const USER_KEYS = ['created_at', 'email', 'id', 'is_active', 'last_login_at', 'role', 'updated_at', 'username'];
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface UserBody {
  id: number;
  username: string;
  email: string;
  role: string;
  is_active: boolean;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

/** Asserts the body holds no password-ish key and not the password itself. */
function assertNoPassword(res: LightMyRequestResponse, ...passwords: string[]): void {
  assert.doesNotMatch(res.body, /"[^"]*password[^"]*"\s*:/i, `password key in ${res.body}`);
  for (const pw of passwords) {
    assert.ok(!res.body.includes(pw), `password leaked in ${res.body}`);
  }
}

function assertUserShape(user: UserBody): void {
  assert.deepEqual(Object.keys(user).sort(), USER_KEYS);
  assert.ok(Number.isInteger(user.id) && user.id > 0);
  assert.match(user.created_at, ISO_UTC);
  assert.match(user.updated_at, ISO_UTC);
  assert.ok(user.last_login_at === null || ISO_UTC.test(user.last_login_at));
}

describe('users service', () => {
  let ctx: TestContext;
  let adminId: number;
  before(async () => {
    ctx = await createTestContext();
    adminId = (await ctx.request({ method: 'GET', url: '/users/me', token: ctx.adminToken })).json().id;
  });
  after(() => ctx.close());

  const create = (payload: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method: 'POST', url: '/users', token, payload });
  const list = (query: string, token = ctx.adminToken) => ctx.request({ method: 'GET', url: `/users${query}`, token });
  const newUser = (username = unique('user'), role = 'viewer') => ({
    username,
    email: `${username}@example.test`,
    password: `pw-${unique()}-${unique()}`,
    role,
  });

  test('POST /users returns the user in the contract shape, without any password', async () => {
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

  test('GET /users returns users, total, page and limit (defaults 1 and 20), ordered by id', async () => {
    await create(newUser());
    const res = await list('');
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['limit', 'page', 'total', 'users']);
    assert.equal(body.page, 1);
    assert.equal(body.limit, 20);
    assert.ok(body.total >= 2);
    assert.equal(body.users.length, Math.min(body.total, 20));
    const ids = body.users.map((u: UserBody) => u.id);
    assert.deepEqual(ids, [...ids].sort((a: number, b: number) => a - b));
    assert.equal(body.users[0].id, adminId);
    body.users.forEach(assertUserShape);
  });

  test('paging walks a filtered list in stable id order without overlap', async () => {
    const tag = unique('page');
    const created: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await create(newUser(`${tag}-${i}`));
      created.push(res.json().id);
    }
    const seen: number[] = [];
    for (const page of [1, 2, 3]) {
      const res = await list(`?search=${tag}&page=${page}&limit=2`);
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.equal(body.total, 5);
      assert.equal(body.page, page);
      assert.equal(body.limit, 2);
      assert.equal(body.users.length, page < 3 ? 2 : 1);
      seen.push(...body.users.map((u: UserBody) => u.id));
    }
    assert.deepEqual(seen, created);
    const beyond = await list(`?search=${tag}&page=4&limit=2`);
    assert.equal(beyond.statusCode, 200);
    assert.deepEqual(beyond.json().users, []);
    assert.equal(beyond.json().total, 5);
    // Same query twice gives the same page.
    const again = await list(`?search=${tag}&page=2&limit=2`);
    assert.deepEqual(again.json().users.map((u: UserBody) => u.id), created.slice(2, 4));
  });

  test('search matches substrings of username or email, case-insensitively', async () => {
    const tag = unique('srch');
    const byName = await create({ ...newUser(`Alpha${tag}Name`), email: `${unique('x')}@example.test` });
    const byEmail = await create({ ...newUser(unique('plain')), email: `Beta${tag}Mail@Example.test` });
    assert.equal(byName.statusCode, 200);
    assert.equal(byEmail.statusCode, 200);

    const both = await list(`?search=${tag.toUpperCase()}`);
    assert.equal(both.statusCode, 200);
    assert.deepEqual(both.json().users.map((u: UserBody) => u.id), [byName.json().id, byEmail.json().id]);
    assert.equal(both.json().total, 2);

    const nameOnly = await list(`?search=${encodeURIComponent(`alpha${tag}`.toUpperCase())}`);
    assert.deepEqual(nameOnly.json().users.map((u: UserBody) => u.id), [byName.json().id]);
    const emailOnly = await list(`?search=${encodeURIComponent(`${tag}mail@example`)}`);
    assert.deepEqual(emailOnly.json().users.map((u: UserBody) => u.id), [byEmail.json().id]);
    const none = await list(`?search=${unique('nomatch')}`);
    assert.equal(none.json().total, 0);
    assert.deepEqual(none.json().users, []);
  });

  test('search treats % and _ literally', async () => {
    const tag = unique('lit');
    const underscore = await create(newUser(`${tag}_x`));
    const letter = await create(newUser(`${tag}ax`));
    const percent = await create({ ...newUser(unique('pc')), email: `${tag}%z@example.test` });
    const plain = await create({ ...newUser(unique('pc')), email: `${tag}zz@example.test` });
    for (const res of [underscore, letter, percent, plain]) {
      assert.equal(res.statusCode, 200, res.body);
    }
    const us = await list(`?search=${encodeURIComponent(`${tag}_`)}`);
    assert.deepEqual(us.json().users.map((u: UserBody) => u.id), [underscore.json().id]);
    const pc = await list(`?search=${encodeURIComponent(`${tag}%`)}`);
    assert.deepEqual(pc.json().users.map((u: UserBody) => u.id), [percent.json().id]);
    // A lone wildcard character matches only values containing it.
    const lonePercent = await list(`?search=${encodeURIComponent('%')}&limit=200`);
    assert.deepEqual(lonePercent.json().users.map((u: UserBody) => u.id), [percent.json().id]);
    // A backslash is literal too (no escape-character error, no match).
    const backslash = await list(`?search=${encodeURIComponent(`${tag}\\`)}`);
    assert.equal(backslash.statusCode, 200, backslash.body);
    assert.equal(backslash.json().total, 0);
    const escapedUnderscore = await list(`?search=${encodeURIComponent(`${tag}\\_`)}`);
    assert.equal(escapedUnderscore.statusCode, 200, escapedUnderscore.body);
    assert.equal(escapedUnderscore.json().total, 0);
  });

  test('paging parameters are validated: limit 1..200, page ≥ 1', async () => {
    assertError(await list('?limit=201'), 400, 'validation_error', 'limit');
    assertError(await list('?limit=0'), 400, 'validation_error', 'limit');
    assertError(await list('?page=0'), 400, 'validation_error', 'page');
    assertError(await list('?page=-1'), 400, 'validation_error', 'page');
    assertError(await list('?limit=abc'), 400, 'validation_error', 'limit');
    const max = await list('?limit=200');
    assert.equal(max.statusCode, 200);
    assert.equal(max.json().limit, 200);
  });

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
    assertError(await create({}), 400, 'validation_error');
    const text = await ctx.request({ method: 'POST', url: '/users', token: ctx.adminToken, headers: { 'content-type': 'application/json' }, payload: '[1,2]' });
    assertError(text, 400, 'validation_error');
  });

  test('duplicate username (any case) or email (any case) is 409 conflict naming the field', async () => {
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
    const missing = 987654;
    assertError(await ctx.request({ method: 'GET', url: `/users/${missing}`, token: ctx.adminToken }), 404, 'not_found');
    assertError(await ctx.request({ method: 'PUT', url: `/users/${missing}`, token: ctx.adminToken, payload: { role: 'viewer' } }), 404, 'not_found');
    assertError(await ctx.request({ method: 'DELETE', url: `/users/${missing}`, token: ctx.adminToken }), 404, 'not_found');
  });

  test('a non-integer or out-of-range id is a 400 naming id', async () => {
    for (const id of ['abc', '0', '-3', '99999999999']) {
      assertError(await ctx.request({ method: 'GET', url: `/users/${id}`, token: ctx.adminToken }), 400, 'validation_error', 'id');
      assertError(await ctx.request({ method: 'PUT', url: `/users/${id}`, token: ctx.adminToken, payload: { role: 'viewer' } }), 400, 'validation_error', 'id');
      assertError(await ctx.request({ method: 'DELETE', url: `/users/${id}`, token: ctx.adminToken }), 400, 'validation_error', 'id');
    }
  });

  test('a fractional id is a 400 naming id, not truncated to another user', async () => {
    const victim = await ctx.createUser('viewer');
    const fractional = `${victim.id}.5`;
    assertError(await ctx.request({ method: 'GET', url: `/users/${fractional}`, token: ctx.adminToken }), 400, 'validation_error', 'id');
    assertError(await ctx.request({ method: 'PUT', url: `/users/${fractional}`, token: ctx.adminToken, payload: { role: 'operator' } }), 400, 'validation_error', 'id');
    assertError(await ctx.request({ method: 'DELETE', url: `/users/${fractional}`, token: ctx.adminToken }), 400, 'validation_error', 'id');
    const still = await ctx.request({ method: 'GET', url: `/users/${victim.id}`, token: ctx.adminToken });
    assert.equal(still.statusCode, 200);
    assert.equal(still.json().role, 'viewer');
  });

  test('PUT /users/{id} changes email, role, is_active and password', async () => {
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

  test('invalid PUT /users/{id} bodies are 400 naming the field and change nothing', async () => {
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

  test('DELETE /users/{id} deletes the user and ends their access', async () => {
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

  for (const role of ['viewer', 'operator'] as const) {
    test(`${role}s get 403 on user management and on other users, but can read themselves`, async () => {
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

  test('GET /users/me returns the caller', async () => {
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

describe('the last active admin', () => {
  let ctx: TestContext;
  let adminId: number;
  before(async () => {
    ctx = await createTestContext();
    adminId = (await ctx.request({ method: 'GET', url: '/users/me', token: ctx.adminToken })).json().id;
  });
  after(() => ctx.close());

  const put = (id: number, payload: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method: 'PUT', url: `/users/${id}`, token, payload });

  test('the only admin cannot be deleted, disabled or demoted', async () => {
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
