/**
 * The libraries API without a target: response shapes, catalog state, install by version, zip
 * uploads, min_opsconductor_version, roles, forced uninstall, and atomic installs (a failure
 * inside the install transaction leaves the previous version in place).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { zipSync } from 'fflate';
import { sql } from 'kysely';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { CATALOG_DIR } from './index.ts';
import { ownLibrary, ownStep, uploadBundle } from './libraries.fixtures.ts';

describe('libraries API', () => {
  let ctx: TestContext;
  let operator: string;
  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method, url, token, payload });
  const versionsOf = async (id: string) => (await ctx.deps.db.selectFrom('library_versions').select('version').where('library_id', '=', id).orderBy('version').execute()).map((r) => r.version);

  before(async () => {
    ctx = await createTestContext();
    operator = (await ctx.createUser('operator')).token;
  });
  after(async () => {
    await ctx?.close();
  });

  test('GET /catalog shows installed_version; install {version} must name the catalog version (else 404)', async () => {
    const entry = async () => ((await call('GET', '/catalog')).json().available_libraries as Array<{ id: string; installed: boolean; installed_version: string | null }>).find((l) => l.id === 'network-tools');
    assert.deepEqual([(await entry())?.installed, (await entry())?.installed_version], [false, null]);
    assertError(await call('POST', '/libraries/network-tools/install', { version: '9.9.9' }), 404, 'not_found');
    assert.equal((await versionsOf('network-tools')).length, 0);
    assertError(await call('POST', '/libraries/no-such-library/install', {}), 404, 'not_found');
    const res = await call('POST', '/libraries/network-tools/install', { version: '1.0.0' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual([res.json().message, res.json().version], ['Installed network-tools 1.0.0', '1.0.0']);
    assert.deepEqual([(await entry())?.installed, (await entry())?.installed_version], [true, '1.0.0']);
  });

  test('GET /libraries/{id}: id, name, version, sha256, installed_at, step summaries and the manifest as shipped', async () => {
    const res = await call('GET', '/libraries/network-tools');
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    const shipped = JSON.parse(readFileSync(join(CATALOG_DIR, 'network-tools', 'manifest.json'), 'utf8'));
    assert.deepEqual(Object.keys(body).sort(), ['id', 'installed_at', 'manifest', 'name', 'sha256', 'steps', 'version']);
    assert.deepEqual([body.id, body.name, body.version], ['network-tools', shipped.name, '1.0.0']);
    assert.match(body.sha256, /^[0-9a-f]{64}$/);
    assert.ok(Math.abs(Date.parse(body.installed_at) - Date.now()) < 60_000, body.installed_at);
    assert.deepEqual(body.manifest, shipped);
    const port = shipped.steps.find((s: { name: string }) => s.name === 'port_test');
    assert.deepEqual(
      body.steps.find((s: { name: string }) => s.name === 'port_test'),
      { name: 'port_test', display_name: port.display_name, description: port.description, category: port.category, platforms: ['linux'], parameters: port.parameters },
    );
    assert.deepEqual((await call('GET', '/libraries/network-tools/steps')).json().steps, body.steps);
    assertError(await call('GET', '/libraries/web-http'), 404, 'not_found');
    assertError(await call('GET', '/libraries/web-http/steps'), 404, 'not_found');
  });

  test('a .zip bundle installs through the API; its SHA-256 is the zip’s', async () => {
    const id = unique('zipped-');
    const manifest = { id, name: 'Zipped', version: '1.0.0', description: 'a zip upload', author: 'tests', license: 'MIT', steps: [ownStep('run', { type: 'script', shell: 'sh', file: 'scripts/run.sh' })] };
    const zip = Buffer.from(zipSync({ 'manifest.json': Buffer.from(JSON.stringify(manifest)), 'scripts/run.sh': Buffer.from('#!/bin/sh\necho zipped\n') }));
    const res = await uploadBundle(ctx, zip, '', ctx.adminToken, 'bundle.zip');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().sha256, createHash('sha256').update(zip).digest('hex'));
    const got = (await call('GET', `/libraries/${id}`)).json();
    assert.deepEqual([got.version, got.sha256, got.steps[0].name], ['1.0.0', res.json().sha256, 'run']);
    const files = (await ctx.deps.db.selectFrom('library_versions').select('files').where('library_id', '=', id).executeTakeFirstOrThrow()).files as Record<string, string>;
    assert.equal(Buffer.from(String(files['scripts/run.sh']), 'base64').toString(), '#!/bin/sh\necho zipped\n');
  });

  test('a bundle needing a newer OpsConductor is refused (400) and nothing is written', async () => {
    const id = unique('future-');
    const res = await uploadBundle(ctx, await ownLibrary(id, '1.0.0', [ownStep('x', { type: 'command', command: 'true' })], {}, { min_opsconductor_version: '999.0.0' }));
    assertError(res, 400, 'validation_error', 'bundle');
    assert.match(res.json().error.message, new RegExp(`^bundle: ${id} 1\\.0\\.0 needs OpsConductor 999\\.0\\.0 or later \\(this is \\d+\\.\\d+\\.\\d+`));
    assert.deepEqual(await versionsOf(id), []);
  });

  test('operators may not upload or uninstall (403); viewers’ reads work for them', async () => {
    const bytes = await ownLibrary(unique('op-'), '1.0.0', [ownStep('x', { type: 'command', command: 'true' })]);
    assertError(await uploadBundle(ctx, bytes, '', operator), 403, 'permission_error');
    assertError(await call('DELETE', '/libraries/network-tools', undefined, operator), 403, 'permission_error');
    assertError(await call('DELETE', '/libraries/network-tools?force=true', undefined, operator), 403, 'permission_error');
    assert.equal((await call('GET', '/libraries/network-tools', undefined, operator)).statusCode, 200);
  });

  test('DELETE refuses while a job uses the library; ?force=true removes it anyway and keeps its versions', async () => {
    const job = await call('POST', '/jobs', { name: unique('uses'), steps: [{ type: 'library', name: 'probe', library: 'network-tools', step: 'port_test', parameters: { host: '127.0.0.1', port: 1 } }] });
    assert.equal(job.statusCode, 200, job.body);
    const refused = await call('DELETE', '/libraries/network-tools');
    assertError(refused, 409, 'conflict');
    assert.deepEqual(refused.json().error.details.jobs, [{ id: job.json().id, name: job.json().name }]);
    const forced = await call('DELETE', '/libraries/network-tools?force=true');
    assert.equal(forced.statusCode, 200, forced.body);
    assert.deepEqual(forced.json(), { message: 'Uninstalled network-tools' });
    assertError(await call('GET', '/libraries/network-tools'), 404, 'not_found');
    assert.deepEqual(await versionsOf('network-tools'), ['1.0.0'], 'every installed version is kept');
  });

  test('a failure inside the install transaction leaves the previous version installed and no row of the new one', async () => {
    const id = unique('atomic-');
    assert.equal((await uploadBundle(ctx, await ownLibrary(id, '1.0.0', [ownStep('x', { type: 'command', command: 'echo one' })]))).statusCode, 200);
    // The version row is written first; a trigger makes the second write (libraries) fail.
    await sql`create function oc_test_refuse() returns trigger language plpgsql as $$ begin raise exception 'refused by test'; end $$`.execute(ctx.deps.db);
    await sql.raw(`create trigger oc_test_refuse before update on libraries for each row when (new.id = '${id}') execute function oc_test_refuse()`).execute(ctx.deps.db);
    try {
      const res = await uploadBundle(ctx, await ownLibrary(id, '1.1.0', [ownStep('x', { type: 'command', command: 'echo two' })]));
      assert.equal(res.statusCode, 500, res.body);
    } finally {
      await sql`drop trigger oc_test_refuse on libraries`.execute(ctx.deps.db);
    }
    assert.equal((await call('GET', `/libraries/${id}`)).json().version, '1.0.0');
    assert.deepEqual(await versionsOf(id), ['1.0.0']);
  });
});
