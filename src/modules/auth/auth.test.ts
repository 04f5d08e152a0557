import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ADMIN_PASSWORD, createTestContext, type TestContext } from '../../../test/app.ts';

describe('auth service', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await createTestContext({ env: { OPSCONDUCTOR_LOGIN_MAX_FAILURES_PER_USER: '3' } });
  });
  after(() => ctx.close());

  test('login returns the guide shape with a rotating refresh token', async () => {
    const res = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.token_type, 'bearer');
    assert.equal(typeof body.access_token, 'string');
    assert.equal(typeof body.refresh_token, 'string');
    assert.equal(body.expires_in, 900);
    assert.deepEqual(Object.keys(body.user).sort(), ['id', 'role', 'username']);
    assert.equal(body.user.role, 'admin');
    assert.match(res.headers['x-request-id'] as string, /^[\w-]+$/);
  });

  test('verify tells who the token belongs to', async () => {
    const res = await ctx.request({ method: 'GET', url: '/auth/verify', token: ctx.adminToken });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(Object.keys(res.json()).sort(), ['role', 'user_id', 'username']);
    assert.equal(res.json().username, 'admin');
  });

  test('unknown user and wrong password give the same 401', async () => {
    const user = await ctx.createUser('viewer');
    const wrongPassword = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: 'not-the-password' } });
    const unknownUser = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: 'nobody-here', password: 'not-the-password' } });
    assert.equal(wrongPassword.statusCode, 401);
    assert.equal(unknownUser.statusCode, 401);
    assert.deepEqual(wrongPassword.json().error, unknownUser.json().error);
    assert.equal(wrongPassword.json().error.code, 'auth_error');
  });

  test('wrong user and wrong password take about the same time (both verify one hash)', async () => {
    const user = await ctx.createUser('viewer');
    const time = async (username: string) => {
      const started = performance.now();
      await ctx.request({ method: 'POST', url: '/auth/login', payload: { username, password: 'wrong-password-x' } });
      return performance.now() - started;
    };
    await time('warm-up-user');
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 2; i++) {
      known.push(await time(user.username));
      unknown.push(await time(`ghost-${i}`));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    // Without the dummy hash an unknown user answers in well under a millisecond of hashing;
    // with it both sides pay one argon2 verify (tens of milliseconds).
    assert.ok(median(unknown) > median(known) / 3, `unknown ${median(unknown)}ms vs known ${median(known)}ms`);
  });

  test('refresh rotates; reusing a refresh token revokes the whole family', async () => {
    const user = await ctx.createUser('operator');
    const first = await ctx.login(user.username, user.password);
    const rotated = await ctx.request({ method: 'POST', url: '/auth/refresh', headers: { authorization: `Bearer ${first.refresh_token}` } });
    assert.equal(rotated.statusCode, 200);
    const second = rotated.json();
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.notEqual(second.access_token, first.access_token);

    const reuse = await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first.refresh_token } });
    assert.equal(reuse.statusCode, 401);
    // The thief's reuse killed the legitimate holder's newer token too.
    const afterReuse = await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: second.refresh_token } });
    assert.equal(afterReuse.statusCode, 401);

    const audit = await ctx.request({ method: 'GET', url: `/audit?action=auth.refresh_reuse&limit=200`, token: ctx.adminToken });
    assert.ok(audit.json().entries.some((e: { resource_id: string }) => e.resource_id === String(user.id)));
  });

  test('refresh without a token is a 400 naming refresh_token; garbage is a 401', async () => {
    const missing = await ctx.request({ method: 'POST', url: '/auth/refresh', payload: {} });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().error.field, 'refresh_token');
    const garbage = await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'not-a-jwt' } });
    assert.equal(garbage.statusCode, 401);
  });

  test('an access token is not accepted as a refresh token, nor the reverse', async () => {
    const user = await ctx.createUser('viewer');
    const pair = await ctx.login(user.username, user.password);
    const asRefresh = await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.access_token } });
    assert.equal(asRefresh.statusCode, 401);
    const asAccess = await ctx.request({ method: 'GET', url: '/auth/verify', token: pair.refresh_token });
    assert.equal(asAccess.statusCode, 401);
  });

  test('logout revokes the access token and its refresh family', async () => {
    const user = await ctx.createUser('viewer');
    const pair = await ctx.login(user.username, user.password);
    const out = await ctx.request({ method: 'POST', url: '/auth/logout', token: pair.access_token });
    assert.equal(out.statusCode, 200);
    assert.deepEqual(out.json(), { message: 'Logged out successfully' });
    assert.equal((await ctx.request({ method: 'GET', url: '/auth/verify', token: pair.access_token })).statusCode, 401);
    assert.equal((await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })).statusCode, 401);
    // Other sessions of the same user are untouched.
    const other = await ctx.login(user.username, user.password);
    assert.equal((await ctx.request({ method: 'GET', url: '/auth/verify', token: other.access_token })).statusCode, 200);
  });

  test('disabling a user or changing their role invalidates their tokens; disabled users cannot log in', async () => {
    const user = await ctx.createUser('operator');
    const pair = await ctx.login(user.username, user.password);
    const demote = await ctx.request({ method: 'PUT', url: `/users/${user.id}`, token: ctx.adminToken, payload: { role: 'viewer' } });
    assert.equal(demote.statusCode, 200);
    assert.equal((await ctx.request({ method: 'GET', url: '/auth/verify', token: pair.access_token })).statusCode, 401);
    assert.equal((await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: pair.refresh_token } })).statusCode, 401);

    const fresh = await ctx.login(user.username, user.password);
    assert.equal((await ctx.request({ method: 'GET', url: '/auth/verify', token: fresh.access_token })).json().role, 'viewer');
    await ctx.request({ method: 'PUT', url: `/users/${user.id}`, token: ctx.adminToken, payload: { is_active: false } });
    assert.equal((await ctx.request({ method: 'GET', url: '/auth/verify', token: fresh.access_token })).statusCode, 401);
    assert.equal((await ctx.request({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: fresh.refresh_token } })).statusCode, 401);
    const login = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: user.password } });
    assert.equal(login.statusCode, 401);
  });

  test('too many failures for one username answer 429 with Retry-After, even with the right password', async () => {
    const user = await ctx.createUser('viewer');
    for (let i = 0; i < 3; i++) {
      const res = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: 'wrong-password-x' } });
      assert.equal(res.statusCode, 401);
    }
    const blocked = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: user.username, password: user.password } });
    assert.equal(blocked.statusCode, 429);
    assert.equal(blocked.json().error.code, 'rate_limited');
    const retryAfter = Number(blocked.headers['retry-after']);
    assert.ok(retryAfter > 0 && retryAfter <= 900, `Retry-After ${retryAfter}`);
    // Another username from the same IP is not blocked by this user's failures.
    assert.equal((await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } })).statusCode, 200);
  });

  test('malformed login bodies are 400s naming the field', async () => {
    const missing = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: 'admin' } });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().error.field, 'password');
    const wrongType = await ctx.request({ method: 'POST', url: '/auth/login', payload: { username: 42, password: 'x' } });
    assert.equal(wrongType.statusCode, 400);
    assert.equal(wrongType.json().error.field, 'username');
  });
});
