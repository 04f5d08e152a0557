/**
 * Dependencies between installed libraries hold after install too: uninstalling a library
 * another depends on, or moving it out of a dependent's range (down or up), is a 409 naming the
 * dependents unless force=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { ownLibrary, ownStep, uploadBundle } from './libraries.fixtures.ts';

describe('library dependencies after install', () => {
  let ctx: TestContext;
  const base = unique('base-');
  const user = unique('user-');
  const step = [ownStep('noop', { type: 'command', command: 'true' })];
  const installed = async (id: string) => {
    const res = await ctx.request({ method: 'GET', url: `/libraries/${id}`, token: ctx.adminToken });
    return res.statusCode === 200 ? (res.json().version as string) : undefined;
  };
  const upload = async (id: string, version: string, query = '', extra = {}) => uploadBundle(ctx, await ownLibrary(id, version, step, {}, extra), query);

  before(async () => {
    ctx = await createTestContext();
    assert.equal((await upload(base, '1.0.0')).statusCode, 200);
    assert.equal((await upload(user, '1.0.0', '', { dependencies: { [base]: '^1.0.0' } })).statusCode, 200);
  });
  after(async () => {
    await ctx?.close();
  });

  test('uninstalling a library another depends on is refused, naming the dependent and its range', async () => {
    const refused = await ctx.request({ method: 'DELETE', url: `/libraries/${base}`, token: ctx.adminToken });
    assertError(refused, 409, 'conflict');
    assert.equal(refused.json().error.message, `Cannot uninstall ${base}: installed libraries depend on ${base}: ${user} (needs ^1.0.0); change them or uninstall with force=true`);
    assert.deepEqual(refused.json().error.details, { jobs: [], dependents: [{ id: user, range: '^1.0.0' }] });
    assert.equal(await installed(base), '1.0.0');
  });

  test('an upgrade or downgrade out of a dependent’s range is refused; one inside it is not', async () => {
    const major = await upload(base, '2.0.0');
    assertError(major, 409, 'conflict');
    assert.match(major.json().error.message, new RegExp(`^Installed libraries need another version of ${base} than 2\\.0\\.0: ${user} \\(needs \\^1\\.0\\.0\\)`));
    assert.equal(await installed(base), '1.0.0');
    assert.equal((await upload(base, '1.2.0')).statusCode, 200, 'an upgrade within ^1.0.0');
    // allow_downgrade alone does not break a dependent.
    const down = await upload(base, '0.9.0', '?allow_downgrade=true');
    assertError(down, 409, 'conflict');
    assert.deepEqual(down.json().error.details.dependents, [{ id: user, range: '^1.0.0' }]);
    assert.equal(await installed(base), '1.2.0');
    const forced = await upload(base, '0.9.0', '?allow_downgrade=true&force=true');
    assert.equal(forced.statusCode, 200, forced.body);
    assert.equal(forced.json().message, `Downgraded ${base} 0.9.0 (was 1.2.0)`);
    assert.equal(await installed(base), '0.9.0');
    assert.equal((await upload(base, '1.2.0')).statusCode, 200, 'back into the range');
  });

  test('force=true uninstalls anyway; the dependent stays; a library nothing depends on uninstalls', async () => {
    const forced = await ctx.request({ method: 'DELETE', url: `/libraries/${base}?force=true`, token: ctx.adminToken });
    assert.equal(forced.statusCode, 200, forced.body);
    assert.equal(await installed(base), undefined);
    assert.equal(await installed(user), '1.0.0');
    assert.equal((await ctx.request({ method: 'DELETE', url: `/libraries/${user}`, token: ctx.adminToken })).statusCode, 200);
    assert.equal(await installed(user), undefined);
  });
});
