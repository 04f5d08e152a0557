/**
 * A test app for one describe block, with an operator, a viewer and some credentials, as objects
 * that exist before the app does: `setup` (for `before`) fills them in place, so a test file can
 * destructure them up front and its tests use them as plain values.
 */
import assert from 'node:assert/strict';

import { createTestContext, type TestContext, unique } from './app.ts';

/** A user created through the API, with its access token. */
export interface FixtureUser {
  id: number;
  token: string;
}

/**
 * `ctx`, `operator`, `viewer` and `creds` (credential ids by key of `credentials`, each created from
 * its body by the admin) are filled in by `setup()`; `close()` (for `after`) stops the app, if
 * `setup` got that far.
 */
export function apiFixture<K extends string>(credentials: Record<K, Record<string, unknown>>) {
  const ctx = {} as TestContext;
  const operator: FixtureUser = { id: 0, token: '' };
  const viewer: FixtureUser = { id: 0, token: '' };
  const creds = {} as Record<K, number>;

  const setup = async (): Promise<void> => {
    Object.assign(ctx, await createTestContext());
    Object.assign(operator, await ctx.createUser('operator'));
    Object.assign(viewer, await ctx.createUser('viewer'));
    for (const [key, body] of Object.entries(credentials) as Array<[K, Record<string, unknown>]>) {
      const res = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique(`cred-${key}-`), ...body } });
      assert.equal(res.statusCode, 200, res.body);
      creds[key] = res.json().id;
    }
  };
  const close = async (): Promise<void> => {
    await ctx.close?.();
  };

  return { ctx, operator, viewer, creds, setup, close };
}
