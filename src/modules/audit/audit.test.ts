import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';


import { ADMIN_PASSWORD, createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';

const ENTRY_KEYS = ['action', 'actor_id', 'actor_username', 'at', 'details', 'id', 'ip', 'request_id', 'resource_id', 'resource_type'];
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface Entry {
  id: number;
  at: string;
  actor_id: number | null;
  actor_username: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  ip: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

describe('audit log', () => {
  let ctx: TestContext;
  let adminId: number;
  before(async () => {
    ctx = await createTestContext();
    adminId = (await ctx.request({ method: 'GET', url: '/users/me', token: ctx.adminToken })).json().id;
  });
  after(() => ctx.close());

  /** GET /audit as admin; fails the test unless it answers 200. */
  const audit = async (query = ''): Promise<{ entries: Entry[]; total: number; page: number; limit: number; raw: string }> => {
    const res = await ctx.request({ method: 'GET', url: `/audit${query}`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    return { ...res.json(), raw: res.body };
  };
  /** The single entry of `action` carrying `requestId`. */
  const entryFor = async (action: string, requestId: string): Promise<Entry> => {
    const { entries } = await audit(`?action=${encodeURIComponent(action)}&limit=200`);
    const found = entries.filter((e) => e.request_id === requestId);
    assert.equal(found.length, 1, `${action} entries with request id ${requestId}: ${JSON.stringify(entries)}`);
    return found[0] as Entry;
  };
  const rid = () => unique('audit-req-');

  test('GET /audit is for admins only', async () => {
    assertError(await ctx.request({ method: 'GET', url: '/audit' }), 401, 'auth_error');
    assertError(await ctx.request({ method: 'GET', url: '/audit', token: 'not-a-token' }), 401, 'auth_error');
    for (const role of ['viewer', 'operator'] as const) {
      const user = await ctx.createUser(role);
      assertError(await ctx.request({ method: 'GET', url: '/audit', token: user.token }), 403, 'permission_error');
      assertError(await ctx.request({ method: 'GET', url: `/audit?actor_id=${user.id}`, token: user.token }), 403, 'permission_error');
    }
    const res = await ctx.request({ method: 'GET', url: '/audit', token: ctx.adminToken });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['entries', 'limit', 'page', 'total']);
    assert.equal(body.page, 1);
    assert.equal(body.limit, 20);
    assert.ok(body.total >= body.entries.length && body.entries.length > 0);
    for (const entry of body.entries as Entry[]) {
      assert.deepEqual(Object.keys(entry).sort(), ENTRY_KEYS);
      assert.match(entry.at, ISO_UTC);
      assert.equal(typeof entry.details, 'object');
    }
  });

  test('paging parameters and filters are validated', async () => {
    const get = (query: string) => ctx.request({ method: 'GET', url: `/audit${query}`, token: ctx.adminToken });
    assertError(await get('?limit=201'), 400, 'validation_error', 'limit');
    assertError(await get('?limit=0'), 400, 'validation_error', 'limit');
    assertError(await get('?page=0'), 400, 'validation_error', 'page');
    assertError(await get('?actor_id=abc'), 400, 'validation_error', 'actor_id');
    assertError(await get('?actor_id=0'), 400, 'validation_error', 'actor_id');
    assertError(await get(`?action=${'a'.repeat(101)}`), 400, 'validation_error', 'action');
    const max = await get('?limit=200');
    assert.equal(max.statusCode, 200);
    assert.equal(max.json().limit, 200);
  });

  test('a successful login is recorded with who, on what, from where and which request', async () => {
    const user = await ctx.createUser('viewer');
    const requestId = rid();
    const res = await ctx.request({
      method: 'POST',
      url: '/auth/login',
      headers: { 'x-request-id': requestId },
      payload: { username: user.username, password: user.password },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-request-id'], requestId);
    const entry = await entryFor('auth.login', requestId);
    assert.equal(entry.actor_id, user.id);
    assert.equal(entry.actor_username, user.username);
    assert.equal(entry.resource_type, 'user');
    assert.equal(entry.resource_id, String(user.id));
    assert.equal(entry.ip, '127.0.0.1');
    assert.match(entry.at, ISO_UTC);
    assert.ok(!JSON.stringify(entry).includes(user.password));
  });

  test('a failed login is recorded with the username but never the attempted password', async () => {
    const user = await ctx.createUser('operator');
    for (const username of [user.username, unique('ghost')]) {
      const attempted = `Wrong-${unique()}-${unique()}`;
      const requestId = rid();
      const res = await ctx.request({
        method: 'POST',
        url: '/auth/login',
        headers: { 'x-request-id': requestId },
        payload: { username, password: attempted },
      });
      assert.equal(res.statusCode, 401);
      const entry = await entryFor('auth.login_failed', requestId);
      assert.equal(entry.details.username, username);
      assert.equal(entry.resource_type, 'user');
      assert.equal(entry.ip, '127.0.0.1');
      assert.doesNotMatch(JSON.stringify(entry), /password"\s*:/i);
      const listing = await audit('?limit=200');
      assert.ok(!listing.raw.includes(attempted), 'attempted password in the audit log');
      assert.ok(!ctx.logs.text().includes(attempted), 'attempted password in the logs');
    }
    // The real password of the known user never shows up either.
    assert.ok(!(await audit('?limit=200')).raw.includes(user.password));
  });

  test('logout is recorded for the user who logged out', async () => {
    const user = await ctx.createUser('viewer');
    const requestId = rid();
    const res = await ctx.request({ method: 'POST', url: '/auth/logout', token: user.token, headers: { 'x-request-id': requestId } });
    assert.equal(res.statusCode, 200);
    const entry = await entryFor('auth.logout', requestId);
    assert.equal(entry.actor_id, user.id);
    assert.equal(entry.actor_username, user.username);
    assert.equal(entry.resource_type, 'user');
    assert.equal(entry.resource_id, String(user.id));
    assert.equal(entry.ip, '127.0.0.1');
  });

  test('user create, update and delete are recorded with actor, resource, ip and request id, without passwords', async () => {
    const username = unique('audited');
    const password = `first-${unique()}-${unique()}`;
    const createId = rid();
    const created = await ctx.request({
      method: 'POST',
      url: '/users',
      token: ctx.adminToken,
      headers: { 'x-request-id': createId },
      payload: { username, email: `${username}@example.test`, password, role: 'viewer' },
    });
    assert.equal(created.statusCode, 200);
    const userId = created.json().id as number;
    const createEntry = await entryFor('user.create', createId);
    assert.equal(createEntry.actor_id, adminId);
    assert.equal(createEntry.actor_username, 'admin');
    assert.equal(createEntry.resource_type, 'user');
    assert.equal(createEntry.resource_id, String(userId));
    assert.equal(createEntry.ip, '127.0.0.1');
    assert.equal(createEntry.details.username, username);

    const newPassword = `second-${unique()}-${unique()}`;
    const updateId = rid();
    const updated = await ctx.request({
      method: 'PUT',
      url: `/users/${userId}`,
      token: ctx.adminToken,
      headers: { 'x-request-id': updateId },
      payload: { role: 'operator', password: newPassword },
    });
    assert.equal(updated.statusCode, 200);
    const updateEntry = await entryFor('user.update', updateId);
    assert.equal(updateEntry.actor_id, adminId);
    assert.equal(updateEntry.resource_type, 'user');
    assert.equal(updateEntry.resource_id, String(userId));
    assert.equal(updateEntry.ip, '127.0.0.1');
    assert.equal(updateEntry.details.role, 'operator');

    const deleteId = rid();
    const deleted = await ctx.request({ method: 'DELETE', url: `/users/${userId}`, token: ctx.adminToken, headers: { 'x-request-id': deleteId } });
    assert.equal(deleted.statusCode, 200);
    const deleteEntry = await entryFor('user.delete', deleteId);
    assert.equal(deleteEntry.actor_id, adminId);
    assert.equal(deleteEntry.resource_type, 'user');
    assert.equal(deleteEntry.resource_id, String(userId));
    assert.equal(deleteEntry.ip, '127.0.0.1');
    assert.equal(deleteEntry.details.username, username);

    const all = await audit('?limit=200');
    assert.ok(!all.raw.includes(password) && !all.raw.includes(newPassword), 'a password reached the audit log');
    assert.ok(!all.raw.includes('$argon2'), 'a password hash reached the audit log');
  });

  test('an own password change is recorded without either password', async () => {
    const user = await ctx.createUser('viewer');
    const newPassword = `mine-${unique()}-${unique()}`;
    const requestId = rid();
    const res = await ctx.request({
      method: 'PUT',
      url: '/users/me',
      token: user.token,
      headers: { 'x-request-id': requestId },
      payload: { current_password: user.password, new_password: newPassword },
    });
    assert.equal(res.statusCode, 200);
    const entry = await entryFor('user.password_change', requestId);
    assert.equal(entry.actor_id, user.id);
    assert.equal(entry.resource_id, String(user.id));
    const all = await audit('?limit=200');
    assert.ok(!all.raw.includes(user.password) && !all.raw.includes(newPassword));
  });

  test('refused changes leave no audit entry', async () => {
    const user = await ctx.createUser('viewer');
    const forbidden = rid();
    const denied = await ctx.request({ method: 'DELETE', url: `/users/${adminId}`, token: user.token, headers: { 'x-request-id': forbidden } });
    assert.equal(denied.statusCode, 403);
    const conflict = rid();
    const lastAdmin = await ctx.request({ method: 'DELETE', url: `/users/${adminId}`, token: ctx.adminToken, headers: { 'x-request-id': conflict } });
    assert.equal(lastAdmin.statusCode, 409);
    const demote = rid();
    const demoted = await ctx.request({ method: 'PUT', url: `/users/${adminId}`, token: ctx.adminToken, headers: { 'x-request-id': demote }, payload: { role: 'viewer' } });
    assert.equal(demoted.statusCode, 409);
    const { entries } = await audit('?limit=200');
    assert.deepEqual(entries.filter((e) => [forbidden, conflict, demote].includes(e.request_id ?? '')), []);
  });

  test('entries are listed newest first and page without overlap', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await ctx.createUser('viewer')).id);
    }
    const creates = await audit('?action=user.create&limit=3');
    assert.deepEqual(creates.entries.map((e) => e.resource_id), ids.reverse().map(String));

    const { entries } = await audit('?limit=200');
    for (let i = 1; i < entries.length; i++) {
      const [prev, cur] = [entries[i - 1] as Entry, entries[i] as Entry];
      assert.ok(Date.parse(prev.at) >= Date.parse(cur.at), `entry ${cur.id} is newer than ${prev.id}`);
      assert.ok(prev.id > cur.id, `ids out of order: ${prev.id} before ${cur.id}`);
    }

    const first = await audit('?limit=3&page=1');
    const second = await audit('?limit=3&page=2');
    const both = await audit('?limit=6&page=1');
    assert.equal(first.page, 1);
    assert.equal(second.page, 2);
    assert.equal(first.limit, 3);
    assert.equal(first.total, both.total);
    assert.deepEqual([...first.entries, ...second.entries].map((e) => e.id), both.entries.map((e) => e.id));
  });

  test('filters by actor_id and action, with a matching total', async () => {
    const user = await ctx.createUser('operator'); // logs in once
    await ctx.login(user.username, user.password);
    await ctx.login(user.username, user.password);
    const other = await ctx.createUser('operator');
    await ctx.login(other.username, other.password);

    const byUser = await audit(`?actor_id=${user.id}&limit=200`);
    assert.ok(byUser.entries.length >= 3);
    assert.equal(byUser.total, byUser.entries.length);
    assert.ok(byUser.entries.every((e) => e.actor_id === user.id));

    const logins = await audit(`?actor_id=${user.id}&action=auth.login`);
    assert.equal(logins.total, 3);
    assert.equal(logins.entries.length, 3);
    assert.ok(logins.entries.every((e) => e.action === 'auth.login' && e.actor_id === user.id));

    const creates = await audit(`?action=user.create&actor_id=${adminId}&limit=200`);
    assert.ok(creates.entries.some((e) => e.resource_id === String(user.id)));
    assert.ok(creates.entries.some((e) => e.resource_id === String(other.id)));
    assert.ok(creates.entries.every((e) => e.action === 'user.create' && e.actor_id === adminId));

    const allLogins = await audit('?action=auth.login&limit=200');
    assert.ok(allLogins.entries.every((e) => e.action === 'auth.login'));
    assert.ok(allLogins.total >= logins.total + 1);

    const nobody = await audit('?actor_id=987654');
    assert.equal(nobody.total, 0);
    assert.deepEqual(nobody.entries, []);
    const noAction = await audit(`?action=${unique('no.such.action')}`);
    assert.equal(noAction.total, 0);
  });

  test('the initial admin login shows up as an auth.login by admin', async () => {
    const requestId = rid();
    const res = await ctx.request({ method: 'POST', url: '/auth/login', headers: { 'x-request-id': requestId }, payload: { username: 'admin', password: ADMIN_PASSWORD } });
    assert.equal(res.statusCode, 200);
    const entry = await entryFor('auth.login', requestId);
    assert.equal(entry.actor_id, adminId);
    assert.equal(entry.actor_username, 'admin');
  });
});
