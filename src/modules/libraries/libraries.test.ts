/**
 * Step libraries through the API: the shipped catalog installs, lists and runs its Linux steps on
 * a real sshd (directly and as job steps) with structured outputs; signed download URLs; upgrade,
 * guarded downgrade and uninstall; malicious bundles refused with nothing written.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { gzipSync } from 'fflate';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';
import { readBundle, writeBundle } from '../../libraries/bundle.ts';

const multipart = (data: Buffer, name = 'bundle.tar.gz') => {
  const boundary = `----oc${Date.now()}`;
  const payload = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
};

/** A tar archive by hand: one entry named `name` (any name, unlike writeBundle). */
function tarWith(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) {
    sum += byte;
  }
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const body = Buffer.concat([content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

describe('step libraries', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  let sshd: Sshd;
  let target: number;
  let now = Date.now();
  const call = (method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, payload?: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method, url, token, payload });
  const ok = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>) => {
    const res = await call(method, url, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Record<string, unknown>;
  };
  const upload = (data: Buffer, query = '') => ctx.request({ method: 'POST', url: `/libraries/install${query}`, token: ctx.adminToken, ...multipart(data) });

  before(async () => {
    ctx = await createTestContext({ worker: true, clock: { now: () => new Date(now) } });
    sshd = await startSshd();
    const credential = (await ok('POST', '/credentials', { name: unique('c'), type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey })).id;
    target = (await ok('POST', '/targets', { name: unique('linux'), host: sshd.host, port: sshd.port, os_type: 'linux', protocol: 'ssh', credential_id: credential })).id as number;
  });
  after(async () => {
    await ctx?.close();
    await sshd?.stop();
  });

  test('the catalog lists the four shipped libraries; each installs and lists its steps', async () => {
    const catalog = (await ok('GET', '/catalog')).available_libraries as Array<{ id: string; installed: boolean; version: string }>;
    assert.deepEqual(catalog.map((l) => l.id), ['linux-core', 'network-tools', 'web-http', 'windows-core']);
    assert.ok(catalog.every((l) => !l.installed));
    for (const { id, version } of catalog) {
      const installed = await ok('POST', `/libraries/${id}/install`, {});
      assert.equal(installed.version, version);
      assert.match(String(installed.sha256), /^[0-9a-f]{64}$/);
    }
    const list = (await ok('GET', '/libraries')).libraries as Array<{ id: string; steps: number }>;
    assert.deepEqual(list.map((l) => l.id), ['linux-core', 'network-tools', 'web-http', 'windows-core']);
    const steps = (await ok('GET', '/libraries/linux-core/steps')).steps as Array<{ name: string }>;
    assert.ok(['get_system_info', 'disk_usage', 'service_status', 'restart_service', 'package_installed', 'tail_log'].every((n) => steps.some((s) => s.name === n)));
    assertError(await call('POST', '/libraries/linux-core/install', {}, (await ctx.createUser('operator')).token), 403, 'permission_error');
  });

  test('a step runs on a real sshd with structured outputs', async () => {
    const res = await ok('POST', '/libraries/linux-core/steps/get_system_info/execute', { parameters: { target_id: target } });
    const result = res.result as { status: string; exit_code: number; outputs: Record<string, string> };
    assert.equal(result.status, 'succeeded', JSON.stringify(res));
    assert.ok(result.outputs.hostname, JSON.stringify(result.outputs));
    assert.ok(Number(result.outputs.memory_total_kb) > 0, JSON.stringify(result.outputs));
    assert.equal(typeof res.execution_time_ms, 'number');
    assertError(await call('POST', '/libraries/linux-core/steps/nope/execute', { parameters: { target_id: target } }), 400, 'validation_error', 'step.step');
    assertError(await call('POST', '/libraries/linux-core/steps/tail_log/execute', { parameters: { target_id: target } }), 400, 'validation_error', 'step.parameters.path');
  });

  test('a step of each Linux library runs on the target through the product; a secret parameter is masked', async () => {
    const web = createServer((req, res) => res.end(`you sent ${req.headers.authorization ?? 'nothing'}\n`));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    const port = (web.address() as AddressInfo).port;
    try {
      const run = async (library: string, step: string, parameters: Record<string, unknown>) => {
        const res = await ok('POST', `/libraries/${library}/steps/${step}/execute`, { parameters: { target_id: target, ...parameters } });
        const result = res.result as { status: string; stdout: string; outputs: Record<string, string> };
        assert.equal(result.status, 'succeeded', `${library}/${step}: ${JSON.stringify(res)}`);
        return result;
      };
      assert.ok(Object.keys((await run('linux-core', 'disk_usage', { path: '/' })).outputs).length > 0);
      await run('network-tools', 'port_test', { host: '127.0.0.1', port: sshd.port });
      const secret = 'Bearer-s3cret-token-value';
      const http = await run('web-http', 'http_request', { url: `http://127.0.0.1:${port}/`, bearer_token: secret });
      assert.match(JSON.stringify(http), /\*\*\*/);
      assert.doesNotMatch(JSON.stringify(http), new RegExp(secret));
    } finally {
      web.closeAllConnections();
      await new Promise((r) => web.close(r));
    }
  });

  test('library steps in jobs: checked when saved, run with the target, outputs kept', async () => {
    const bad = await call('POST', '/jobs', { name: unique('j'), steps: [{ type: 'library', library: 'linux-core', step: 'get_system_info', parameters: { nope: 1 } }] });
    assertError(bad, 400, 'validation_error', 'steps[0].parameters.nope');
    assertError(await call('POST', '/jobs', { name: unique('j'), steps: [{ type: 'library', library: 'not-installed', step: 'x' }] }), 400, 'validation_error', 'steps[0].library');
    const job = await ok('POST', '/jobs', { name: unique('lib'), steps: [{ type: 'library', name: 'info', library: 'linux-core', step: 'get_system_info' }] });
    const queued = await ok('POST', `/jobs/${job.id}/run`, { target_ids: [target] });
    const deadline = Date.now() + 20_000;
    let run: { status: string; steps: Array<{ status: string; outputs: Record<string, string> }> };
    do {
      await new Promise((r) => setTimeout(r, 100));
      run = (await call('GET', `/job-runs/${queued.job_run_id}`)).json();
    } while (['queued', 'running'].includes(run.status) && Date.now() < deadline);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.ok(run.steps[0]?.outputs.hostname);
  });

  test('download through a signed URL; tampered or expired links are 403', async () => {
    const { download_url: url } = (await ok('POST', '/catalog/linux-core/download')) as { download_url: string };
    const path = new URL(url).pathname + new URL(url).search;
    const got = await ctx.request({ method: 'GET', url: path });
    assert.equal(got.statusCode, 200);
    assert.equal((await readBundle(got.rawPayload)).manifest.id, 'linux-core');
    // One character of the signature changed (never to itself: a signature may start with X).
    const tampered = path.replace(/signature=(.)/, (_, first: string) => `signature=${first === 'X' ? 'Y' : 'X'}`);
    assert.notEqual(tampered, path);
    assertError(await ctx.request({ method: 'GET', url: tampered }), 403, 'permission_error');
    now += 16 * 60_000;
    try {
      assertError(await ctx.request({ method: 'GET', url: path }), 403, 'permission_error');
    } finally {
      now = Date.now();
    }
  });

  test('a queued run keeps the version it was queued with; a missing dependency is refused', async () => {
    const job = await ok('POST', '/jobs', { name: unique('frozen'), steps: [{ type: 'library', name: 'info', library: 'linux-core', step: 'get_system_info' }] });
    const queued = await ok('POST', `/jobs/${job.id}/run`, { target_ids: [target] });
    const definition = async () => (await ctx.deps.db.selectFrom('job_runs').select('definition').where('id', '=', Number(queued.job_run_id)).executeTakeFirstOrThrow()).definition;
    const before = JSON.stringify(await definition());
    const frozen = ((await definition()) as unknown as { steps: Array<{ library: Record<string, string>; content: string }> }).steps[0];
    assert.deepEqual(frozen?.library, { id: 'linux-core', version: '1.0.0', step: 'get_system_info' });
    const link = new URL(String((await ok('POST', '/catalog/linux-core/download')).download_url));
    const current = await readBundle((await ctx.request({ method: 'GET', url: link.pathname + link.search })).rawPayload);
    const changed = new Map(current.files);
    changed.set('scripts/get_system_info.sh', Buffer.from('#!/bin/sh\necho OC_OUTPUT hostname=v2\n'));
    const up = await upload(await writeBundle({ ...current.manifest, version: '1.1.0' }, changed));
    assert.equal(up.statusCode, 200, up.body);
    assert.equal(JSON.stringify(await definition()), before, 'the queued run still holds 1.0.0');
    assert.doesNotMatch(Buffer.from(String(frozen?.content), 'base64').toString(), /hostname=v2/);
    const needy = await upload(await writeBundle({ ...current.manifest, id: 'needs-more', version: '1.0.0', dependencies: { 'not-there': '^1.0.0' } }, current.files));
    assertError(needy, 409, 'conflict');
    assert.match(needy.json().error.message, /needs not-there \^1\.0\.0/);
    assert.equal((await call('POST', '/libraries/linux-core/install?allow_downgrade=true', {})).statusCode, 200);
  });

  test('upgrade by upload, downgrade only when allowed, uninstall refused while a job uses the library', async () => {
    const link = new URL(String((await ok('POST', '/catalog/web-http/download')).download_url));
    const catalogBundle = await readBundle((await ctx.request({ method: 'GET', url: link.pathname + link.search })).rawPayload);
    const newer = await writeBundle({ ...catalogBundle.manifest, version: '9.0.0' }, catalogBundle.files);
    const up = await upload(newer);
    assert.equal(up.statusCode, 200, up.body);
    assert.match(up.json().message, /Upgraded web-http 9\.0\.0/);
    assertError(await call('POST', '/libraries/web-http/install', {}), 409, 'conflict');
    const down = await call('POST', '/libraries/web-http/install?allow_downgrade=true', {});
    assert.equal(down.statusCode, 200, down.body);
    // linux-core is used by the job of the test before.
    const refused = await call('DELETE', '/libraries/linux-core');
    assertError(refused, 409, 'conflict');
    assert.match(refused.json().error.message, /Jobs use linux-core/);
    assert.equal((await call('DELETE', '/libraries/web-http')).statusCode, 200, 'no job uses web-http');
    assert.ok(!((await ok('GET', '/libraries')).libraries as Array<{ id: string }>).some((l) => l.id === 'web-http'));
  });

  test('malicious bundles are refused with a precise error and nothing is written', async () => {
    const before = JSON.stringify((await ok('GET', '/libraries')).libraries);
    const traversal = await upload(Buffer.from(gzipSync(tarWith('../evil.sh', Buffer.from('rm -rf /')))));
    assertError(traversal, 400, 'validation_error', 'bundle');
    assert.match(traversal.json().error.message, /\.\.\/evil\.sh/);
    const badManifest = await upload(Buffer.from(gzipSync(tarWith('manifest.json', Buffer.from(JSON.stringify({ id: 'Bad Id', version: 'one' }))))));
    assertError(badManifest, 400, 'validation_error', 'bundle');
    assert.match(badManifest.json().error.message, /manifest/);
    const oversized = await upload(Buffer.alloc(11 * 1024 * 1024, 1));
    assert.ok([400, 413].includes(oversized.statusCode), oversized.body);
    assert.equal(JSON.stringify((await ok('GET', '/libraries')).libraries), before);
  });
});
