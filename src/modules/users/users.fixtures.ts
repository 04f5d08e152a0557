/**
 * Shared by the users API tests (users.*.test.ts): the response shape of a user, the check that no
 * password leaks, and a test app per describe block with request helpers for /users.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';

const USER_KEYS = ['created_at', 'email', 'id', 'is_active', 'last_login_at', 'role', 'updated_at', 'username'];

/** A UTC timestamp as the API writes it. */
export const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** A user as the API returns it. */
export interface UserBody {
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
export function assertNoPassword(res: LightMyRequestResponse, ...passwords: string[]): void {
  assert.doesNotMatch(res.body, /"[^"]*password[^"]*"\s*:/i, `password key in ${res.body}`);
  for (const pw of passwords) {
    assert.ok(!res.body.includes(pw), `password leaked in ${res.body}`);
  }
}

/** Asserts a user has exactly the contract's keys, a positive id and UTC timestamps. */
export function assertUserShape(user: UserBody): void {
  assert.deepEqual(Object.keys(user).sort(), USER_KEYS);
  assert.ok(Number.isInteger(user.id) && user.id > 0);
  assert.match(user.created_at, ISO_UTC);
  assert.match(user.updated_at, ISO_UTC);
  assert.ok(user.last_login_at === null || ISO_UTC.test(user.last_login_at));
}

/** A POST /users body for `username` with a fresh password. */
export function newUser(username = unique('user'), role = 'viewer') {
  return {
    username,
    email: `${username}@example.test`,
    password: `pw-${unique()}-${unique()}`,
    role,
  };
}

/** The running app of a describe block, the id of its `admin`, and /users requests (as admin unless `token` is given). */
export interface UsersApp {
  readonly ctx: TestContext;
  readonly adminId: number;
  create(payload: Record<string, unknown>, token?: string): Promise<LightMyRequestResponse>;
  list(query: string, token?: string): Promise<LightMyRequestResponse>;
}

/** Starts a test app in the calling describe block's `before` and closes it in its `after`. Read `ctx` and `adminId` inside tests. */
export function usersApp(): UsersApp {
  let started: { ctx: TestContext; adminId: number } | undefined;
  before(async () => {
    const ctx = await createTestContext();
    const adminId = (await ctx.request({ method: 'GET', url: '/users/me', token: ctx.adminToken })).json().id as number;
    started = { ctx, adminId };
  });
  after(() => started?.ctx.close());
  const running = () => {
    assert.ok(started, 'the test app is started in before()');
    return started;
  };
  return {
    get ctx() {
      return running().ctx;
    },
    get adminId() {
      return running().adminId;
    },
    create: (payload, token = running().ctx.adminToken) => running().ctx.request({ method: 'POST', url: '/users', token, payload }),
    list: (query, token = running().ctx.adminToken) => running().ctx.request({ method: 'GET', url: `/users${query}`, token }),
  };
}
