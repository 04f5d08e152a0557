import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { sql } from 'kysely';

import { ADMIN_PASSWORD, createTestContext, type TestContext, unique } from '../../test/app.ts';

describe('no secret reaches a log, a response or the audit trail', () => {
  let ctx: TestContext;
  const secrets: string[] = [ADMIN_PASSWORD];
  const bodies: string[] = [];
  before(async () => {
    ctx = await createTestContext({ env: { OPSCONDUCTOR_LOG_LEVEL: 'trace' } });
  });
  after(() => ctx.close());

  test('a full session: create, log in, refresh, change password, fail logins, log out', async () => {
    const password = `first-${unique()}-${unique()}`;
    const newPassword = `second-${unique()}-${unique()}`;
    const wrongPassword = `wrong-${unique()}-${unique()}`;
    secrets.push(password, newPassword, wrongPassword, ctx.adminToken);
    const username = unique('sec');
    const record = (res: { body: string }) => bodies.push(res.body);

    const created = await ctx.request({ method: 'POST', url: '/users', token: ctx.adminToken, payload: { username, email: `${username}@example.test`, password, role: 'operator' } });
    assert.equal(created.statusCode, 200);
    record(created);
    const login = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username, password } });
    const pair = login.json();
    secrets.push(pair.access_token, pair.refresh_token);
    const refreshed = await ctx.request({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${pair.refresh_token}` } });
    const pair2 = refreshed.json();
    secrets.push(pair2.access_token, pair2.refresh_token);
    record(await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } }));
    record(await ctx.request({ method: 'PUT', url: '/users/me', token: pair2.access_token, payload: { current_password: wrongPassword, new_password: newPassword } }));
    record(await ctx.request({ method: 'PUT', url: '/users/me', token: pair2.access_token, payload: { current_password: password, new_password: newPassword } }));
    record(await ctx.request({ method: 'POST', url: '/auth/login', payload: { username, password: wrongPassword } }));
    record(await ctx.request({ method: 'POST', url: '/auth/login', payload: { username, password: newPassword, extra: wrongPassword } }));
    const again = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username, password: newPassword } });
    secrets.push(again.json().access_token, again.json().refresh_token);
    record(await ctx.request({ method: 'GET', url: '/users', token: ctx.adminToken }));
    record(await ctx.request({ method: 'POST', url: '/auth/logout', token: again.json().access_token }));
    record(await ctx.request({ method: 'GET', url: '/auth/verify', token: again.json().access_token }));
    assert.ok(ctx.logs.lines.length > 10, 'the session produced log lines');
  });

  test('the captured logs contain none of the passwords or tokens', () => {
    const text = ctx.logs.text();
    for (const secret of secrets) {
      assert.equal(text.includes(secret), false, `a secret of length ${secret.length} was logged`);
    }
  });

  test('no response body echoes a password, a token of someone else, or a hash', () => {
    for (const body of bodies) {
      for (const secret of secrets) {
        assert.equal(body.includes(secret), false);
      }
      assert.doesNotMatch(body, /argon2|password_hash/);
    }
  });

  test('the audit trail holds no secret', async () => {
    const rows = await sql<{ row: string }>`select row_to_json(a)::text as row from audit_log a`.execute(ctx.deps.db);
    assert.ok(rows.rows.length > 5);
    const text = rows.rows.map((r) => r.row).join('\n');
    for (const secret of secrets) {
      assert.equal(text.includes(secret), false);
    }
  });
});
